// Package oci turns a finished root file system into an image: the layer
// tar that debuerreotype-tar would write, compressed in the same pass that
// hashes it; the image's config and manifest; the outputs an image is
// written to (an OCI image layout, a docker-archive, a plain tar); and the
// registries it is pushed to.
package oci

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"golang.org/x/sys/unix"

	"github.com/basebuild/basebuild/internal/xattr"
	"github.com/basebuild/basebuild/rootfs/exclude"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Compression is how a layer blob is compressed.
type Compression string

const (
	Gzip Compression = "gzip" // the default: what every client can pull
	Zstd Compression = "zstd"
)

// The compressors' settings are constants so that a blob's bytes depend
// only on the tree (and on the klauspost/compress version go.mod pins).
const gzipLevel = 6

// gzipBlock is the size of the blocks gzip layers are compressed in.
const gzipBlock = 1 << 20

// mediaType returns the OCI layer media type of c; "" is Gzip.
func (c Compression) mediaType() (types.MediaType, error) {
	switch c {
	case Gzip, "":
		return types.OCILayer, nil
	case Zstd:
		return types.OCILayerZStd, nil
	}
	return "", fmt.Errorf("compression %q: want gzip or zstd", string(c))
}

// LayerOptions say how NewLayer archives a tree.
type LayerOptions struct {
	// Epoch is the image's SOURCE_DATE_EPOCH: no entry of the tar is newer.
	Epoch time.Time
	// Compression is Gzip when empty.
	Compression Compression
	// TempDir holds the compressed blob until the layer is closed; empty
	// means os.TempDir().
	TempDir string
	// Log, if set, reports skipped sockets.
	Log func(format string, args ...any)
	// Progress, if set, is told how many bytes of tar have been written,
	// each progressStep and at the end.
	Progress func(written int64)
}

// progressStep is how many bytes of tar NewLayer writes between two
// reports of progress.
const progressStep = 1 << 20

// Layer is a layer blob in a temporary file. It implements v1.Layer: its
// digest, diff ID and size were computed while the blob was written, so
// nothing hashes it again. Close removes the file: keep the layer open
// until its image is written and pushed everywhere.
type Layer struct {
	path        string
	compression Compression
	mediaType   types.MediaType
	digest      v1.Hash // of the compressed blob
	diffID      v1.Hash // of the tar
	size        int64   // of the compressed blob
}

var _ v1.Layer = (*Layer)(nil)

// NewLayer archives the tree dir as WriteTar does, compressing the tar as it
// is written to a temporary file in o.TempDir.
func NewLayer(dir string, o LayerOptions) (*Layer, error) {
	mt, err := o.Compression.mediaType()
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(o.TempDir, "basebuild-layer-*")
	if err != nil {
		return nil, err
	}
	l := &Layer{path: f.Name(), compression: o.Compression, mediaType: mt}
	if err := l.write(f, dir, o); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return l, nil
}

// write archives dir into f, which it closes, and records the hashes.
func (l *Layer) write(f *os.File, dir string, o LayerOptions) error {
	buf := bufio.NewWriterSize(f, 1<<16)
	blob := newHashWriter(buf)
	zw, err := compressor(blob, l.compression)
	if err != nil {
		return err
	}
	tar := newHashWriter(zw)
	var w io.Writer = tar
	if o.Progress != nil {
		w = &progressWriter{w: tar, progress: o.Progress}
	}
	if err := WriteTar(w, dir, o.Epoch, o.Log); err != nil {
		zw.Close()
		return err
	}
	if o.Progress != nil {
		o.Progress(tar.n)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compressing %s: %w", dir, err)
	}
	if err := buf.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	l.digest, l.size = blob.sum(), blob.n
	l.diffID = tar.sum()
	return nil
}

// compressor returns a writer compressing to w with c's fixed settings.
func compressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	if c == Zstd {
		// One goroutine: the output then cannot depend on GOMAXPROCS,
		// whatever later versions do with concurrency.
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	}
	// The header has no name, no time and OS "unknown": nothing but the
	// tar goes into the blob. The tar is compressed in gzipBlock blocks on
	// every core, each with the previous block as its dictionary, which
	// halves the time on two cores; the bytes depend on the block size
	// alone, not on how many are in flight.
	zw, err := pgzip.NewWriterLevel(w, gzipLevel)
	if err != nil {
		return nil, err
	}
	zw.ModTime = time.Unix(0, 0) // pgzip writes the zero Time's seconds, not 0

	if err := zw.SetConcurrency(gzipBlock, max(2, 2*runtime.GOMAXPROCS(0))); err != nil {
		return nil, err
	}
	return zw, nil
}

// hashWriter passes writes on to w, hashing and counting them.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newHashWriter(w io.Writer) *hashWriter {
	return &hashWriter{w: w, h: sha256.New()}
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// progressWriter tells progress the bytes written, each progressStep.
type progressWriter struct {
	w        io.Writer
	n, told  int64
	progress func(int64)
}

func (pw *progressWriter) Write(p []byte) (int, error) {
	n, err := pw.w.Write(p)
	pw.n += int64(n)
	if pw.n-pw.told >= progressStep {
		pw.told = pw.n
		pw.progress(pw.n)
	}
	return n, err
}

func (hw *hashWriter) sum() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(hw.h.Sum(nil))}
}

// Digest is the sha256 of the compressed blob.
func (l *Layer) Digest() (v1.Hash, error) { return l.digest, nil }

// DiffID is the sha256 of the tar.
func (l *Layer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Size is the size of the compressed blob.
func (l *Layer) Size() (int64, error) { return l.size, nil }

// MediaType is the OCI layer type of the blob's compression.
func (l *Layer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

// Compressed opens the blob.
func (l *Layer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("layer %s: closed", l.digest)
	}
	return f, err
}

// Uncompressed opens the blob and decompresses it: the tar.
func (l *Layer) Uncompressed() (io.ReadCloser, error) {
	f, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	var r io.ReadCloser
	if l.compression == Zstd {
		var zr *zstd.Decoder
		zr, err = zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err == nil {
			r = zr.IOReadCloser()
		}
	} else {
		r, err = gzip.NewReader(f)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("layer %s: %w", l.digest, err)
	}
	return &readCloser{r, func() error { r.Close(); return f.Close() }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (rc *readCloser) Close() error { return rc.close() }

// Close removes the blob's temporary file; the layer is unusable after.
func (l *Layer) Close() error {
	err := os.Remove(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// WriteTar writes the tree dir to w as debuerreotype-tar archives a rootfs
// with GNU tar 1.34 ("tar --numeric-owner --sort=name --transform
// 's,^./,,' --exclude-from .tar-exclude …"), byte for byte: GNU format
// headers with numeric ids and no user or group names, names without the
// leading "./" ("./" for the root, "etc/" for directories), entries in
// name order depth first, hard links of a file already archived as links,
// GNU long-name records for names and link targets over 100 bytes, and the
// end padded to a 10240-byte record. Three things differ: modification
// times later than epoch are stored as epoch (debuerreotype-fixup touches
// the files instead); files with extended attributes (kept, unlike
// debuerreotype's tar, but for security.selinux, the build host's label)
// get POSIX pax headers carrying them; and symlink targets are stored as
// they are, where GNU tar's transform also strips "X/" from the front of
// targets like "./x" or "a/b".
//
// Symlinks are archived, never followed. Sockets cannot be archived and
// are left out with a note to logf, if set, as tar does.
func WriteTar(w io.Writer, dir string, epoch time.Time, logf func(format string, args ...any)) error {
	if epoch.IsZero() {
		return fmt.Errorf("archiving %s: no epoch", dir)
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	hs := &headers{epoch: epoch.Unix(), logf: logf, links: map[inode]string{}}
	tw := &tarWriter{w: bufio.NewWriterSize(w, 1<<16)}
	err := walkTree(dir, func(name, full string, st *unix.Stat_t) error {
		if name != "." && exclude.Match(name) {
			return fs.SkipDir
		}
		h, err := hs.of(name, full, st)
		if err != nil || h == nil {
			return err
		}
		if err := tw.writeHeader(h); err != nil {
			return err
		}
		if h.typeflag == tar.TypeReg {
			return tw.writeFile(full, h.size)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.close()
}

// inode identifies a file for finding its hard links.
type inode struct{ dev, ino uint64 }

// headers describes the entries of a tree as GNU tar stores them. It
// remembers the files with more than one link it saw, so that the later
// names of one are hard links of the first.
type headers struct {
	epoch int64 // later modification times are stored as this
	logf  func(format string, args ...any)
	links map[inode]string // files with more than one link: stored name
}

// of describes the entry name, whose lstat is st, as GNU tar does; nil
// for a socket.
func (hs *headers) of(name, full string, st *unix.Stat_t) (*header, error) {
	h := &header{
		name:  strings.TrimPrefix(name, "./"),
		mode:  int64(st.Mode & 0o7777),
		uid:   int64(st.Uid),
		gid:   int64(st.Gid),
		mtime: min(int64(st.Mtim.Sec), hs.epoch),
	}
	fmtType := st.Mode & unix.S_IFMT
	if fmtType == unix.S_IFSOCK {
		hs.logf("%s: socket ignored", full)
		return nil, nil
	}
	var err error
	if h.xattrs, err = xattr.List(full); err != nil {
		return nil, err
	}
	if fmtType != unix.S_IFDIR && st.Nlink > 1 {
		id := inode{uint64(st.Dev), uint64(st.Ino)}
		if first, ok := hs.links[id]; ok {
			h.typeflag, h.linkname = tar.TypeLink, first
			return h, nil
		}
		hs.links[id] = h.name
	}
	switch fmtType {
	case unix.S_IFREG:
		h.typeflag, h.size = tar.TypeReg, int64(st.Size)
	case unix.S_IFDIR:
		h.typeflag = tar.TypeDir
		h.name = strings.TrimPrefix(name+"/", "./")
		if name == "." {
			h.name = "./"
		}
	case unix.S_IFLNK:
		h.typeflag = tar.TypeSymlink
		if h.linkname, err = os.Readlink(full); err != nil {
			return nil, err
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		h.typeflag = tar.TypeChar
		if fmtType == unix.S_IFBLK {
			h.typeflag = tar.TypeBlock
		}
		h.devmajor, h.devminor = int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
	case unix.S_IFIFO:
		h.typeflag = tar.TypeFifo
	default:
		return nil, fmt.Errorf("%s: cannot archive file type %#o", full, fmtType)
	}
	return h, nil
}

// header is one archive entry as stored.
type header struct {
	name, linkname     string
	typeflag           byte
	mode, uid, gid     int64
	size, mtime        int64
	devmajor, devminor int64
	xattrs             map[string]string
}

const (
	blockSize  = 512
	recordSize = 20 * blockSize // GNU tar's default blocking factor
	nameSize   = 100            // of the name and linkname fields

	magicGNU   = "ustar  \x00"
	magicUSTAR = "ustar\x0000"

	typeGNULongName = 'L'
	typeGNULongLink = 'K'
	typePAX         = 'x'
)

// tarWriter writes tar headers and data as GNU tar does.
type tarWriter struct {
	w   *bufio.Writer
	n   int64 // bytes written
	blk [blockSize]byte
}

// writeHeader writes h's header, preceded by GNU long-name records where
// its names do not fit, or by a pax header if it has extended attributes.
func (tw *tarWriter) writeHeader(h *header) error {
	if len(h.xattrs) > 0 {
		return tw.writePAX(h)
	}
	// GNU tar writes the link's record first.
	if len(h.linkname) > nameSize {
		if err := tw.writeLongName(typeGNULongLink, h.linkname); err != nil {
			return err
		}
	}
	if len(h.name) > nameSize {
		if err := tw.writeLongName(typeGNULongName, h.name); err != nil {
			return err
		}
	}
	tw.fill(h, magicGNU)
	return tw.write(tw.blk[:])
}

// writeLongName writes a GNU record holding a name over 100 bytes, as GNU
// tar writes it.
func (tw *tarWriter) writeLongName(typeflag byte, name string) error {
	tw.fill(&header{name: "././@LongLink", typeflag: typeflag, mode: 0o644, size: int64(len(name)) + 1}, magicGNU)
	if err := tw.write(tw.blk[:]); err != nil {
		return err
	}
	return tw.writeData(name + "\x00")
}

// writePAX writes h as a POSIX pax entry: an extended header with its
// extended attributes and any name too long for the header, then a ustar
// header.
func (tw *tarWriter) writePAX(h *header) error {
	records := map[string]string{}
	for k, v := range h.xattrs {
		records["SCHILY.xattr."+k] = v
	}
	if len(h.name) > nameSize {
		records["path"] = h.name
	}
	if len(h.linkname) > nameSize {
		records["linkpath"] = h.linkname
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(records)) {
		b.WriteString(paxRecord(k, records[k]))
	}
	data := b.String()
	// Named as GNU tar names them: DIR/PaxHeaders/BASE.
	base := strings.TrimSuffix(h.name, "/")
	x := &header{
		name:     path.Join(path.Dir(base), "PaxHeaders", path.Base(base)),
		typeflag: typePAX,
		mode:     0o644,
		size:     int64(len(data)),
		mtime:    h.mtime,
	}
	if path.Dir(base) == "." {
		x.name = "./" + x.name
	}
	tw.fill(x, magicUSTAR)
	if err := tw.write(tw.blk[:]); err != nil {
		return err
	}
	if err := tw.writeData(data); err != nil {
		return err
	}
	tw.fill(h, magicUSTAR)
	return tw.write(tw.blk[:])
}

// paxRecord formats a pax record, "LEN KEY=VALUE\n", LEN counting itself.
func paxRecord(k, v string) string {
	size := len(k) + len(v) + 3 // ' ', '=', '\n'
	size += len(strconv.Itoa(size))
	rec := strconv.Itoa(size) + " " + k + "=" + v + "\n"
	if len(rec) != size { // the length gained a digit
		rec = strconv.Itoa(len(rec)) + " " + k + "=" + v + "\n"
	}
	return rec
}

// fill formats h into tw.blk with the magic and version magic. Names
// longer than their fields are cut: the record before holds them whole.
func (tw *tarWriter) fill(h *header, magic string) {
	b := &tw.blk
	clear(b[:])
	copy(b[0:100], h.name)
	formatNumeric(b[100:108], h.mode)
	formatNumeric(b[108:116], h.uid)
	formatNumeric(b[116:124], h.gid)
	formatNumeric(b[124:136], h.size)
	formatNumeric(b[136:148], h.mtime)
	b[156] = h.typeflag
	copy(b[157:257], h.linkname)
	copy(b[257:265], magic)
	// GNU tar leaves the device fields empty but for devices.
	if h.typeflag == tar.TypeChar || h.typeflag == tar.TypeBlock {
		formatNumeric(b[329:337], h.devmajor)
		formatNumeric(b[337:345], h.devminor)
	}
	sum := int64(0)
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	formatOctal(b[148:155], sum) // six digits and a NUL,
	b[155] = ' '                 // then a space
}

// formatNumeric writes v in octal with a NUL where it fits, else in GNU
// tar's base-256: big-endian two's complement with the top bit set.
func formatNumeric(b []byte, v int64) {
	if v >= 0 && v < 1<<(3*(len(b)-1)) {
		formatOctal(b, v)
		return
	}
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	b[0] |= 0x80
}

// formatOctal writes v as len(b)-1 octal digits and a NUL.
func formatOctal(b []byte, v int64) {
	s := strconv.FormatInt(v, 8)
	n := len(b) - 1
	for i := range n - len(s) {
		b[i] = '0'
	}
	copy(b[n-len(s):n], s)
	b[n] = 0
}

// writeFile writes the content of the regular file name, whose header said
// it has size bytes, and pads it to a block.
func (tw *tarWriter) writeFile(name string, size int64) error {
	f, err := os.OpenFile(name, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyN(tw.w, f, size)
	tw.n += n
	if err == io.EOF {
		return fmt.Errorf("%s: shrank from %d to %d bytes while being archived", name, size, n)
	}
	if err != nil {
		return fmt.Errorf("archiving %s: %w", name, err)
	}
	return tw.pad()
}

// writeData writes s and pads it to a block.
func (tw *tarWriter) writeData(s string) error {
	if err := tw.write([]byte(s)); err != nil {
		return err
	}
	return tw.pad()
}

// pad writes zeros up to the next block.
func (tw *tarWriter) pad() error {
	return tw.zeros((blockSize - tw.n%blockSize) % blockSize)
}

func (tw *tarWriter) zeros(n int64) error {
	var zero [blockSize]byte
	for n > 0 {
		k := min(n, blockSize)
		if err := tw.write(zero[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (tw *tarWriter) write(p []byte) error {
	n, err := tw.w.Write(p)
	tw.n += int64(n)
	return err
}

// close ends the archive with two zero blocks, pads it to a whole record
// as GNU tar does, and flushes it.
func (tw *tarWriter) close() error {
	if err := tw.zeros(2 * blockSize); err != nil {
		return err
	}
	if err := tw.zeros((recordSize - tw.n%recordSize) % recordSize); err != nil {
		return err
	}
	return tw.w.Flush()
}
