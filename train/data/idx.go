package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"

	"github.com/pkg/errors"
)

// IDX magic numbers: two zero bytes, type 0x08 (unsigned byte), number of
// dimensions.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// deflateMaxRatio bounds how much a deflate stream can expand: at best a
// 258-byte match costs two bits, so 1032 output bytes per input byte. A gzip
// file of s bytes therefore never decompresses to more than about 1032·s
// bytes, which lets a header's claim be refused before anything is read.
const deflateMaxRatio = 1032

func loadIDX(dir string) (train, test *Dataset, err error) {
	names, err := readNames(filepath.Join(dir, "classes.txt"), 0)
	if err != nil {
		return nil, nil, err
	}
	if names == nil {
		names = numberedNames(10)
	}
	if len(names) > 256 {
		return nil, nil, errors.Errorf("data: class names %s: %d names, expected at most 256 (IDX labels are bytes)", filepath.Join(dir, "classes.txt"), len(names))
	}
	if train, err = loadIDXSplit(dir, "train", names); err != nil {
		return nil, nil, err
	}
	if test, err = loadIDXSplit(dir, "t10k", names); err != nil {
		return nil, nil, err
	}
	if test.H != train.H || test.W != train.W {
		return nil, nil, errors.Errorf("data: idx directory %s: test images are %d×%d, expected the training images' %d×%d", dir, test.H, test.W, train.H, train.W)
	}
	return train, test, nil
}

// findIDX returns dir/base if it exists, else dir/base.gz.
func findIDX(dir, base string) (string, error) {
	for _, name := range []string{base, base + ".gz"} {
		p := filepath.Join(dir, name)
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", errors.Wrapf(err, "data: idx file %s", p)
		}
	}
	return "", errors.Errorf("data: idx directory %s: found neither %s nor %s.gz", dir, base, base)
}

func loadIDXSplit(dir, prefix string, names []string) (*Dataset, error) {
	imgPath, err := findIDX(dir, prefix+"-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	lblPath, err := findIDX(dir, prefix+"-labels-idx1-ubyte")
	if err != nil {
		return nil, err
	}
	// Labels first: they are small, and their count is what the image file's
	// header must announce (checked before the images are read).
	ldims, lbytes, err := readIDX(lblPath, idxLabelsMagic, "labels", 0, "")
	if err != nil {
		return nil, err
	}
	idims, ibytes, err := readIDX(imgPath, idxImagesMagic, "images", ldims[0], lblPath)
	if err != nil {
		return nil, err
	}
	n, h, w := idims[0], idims[1], idims[2]
	d := &Dataset{
		Images:  make([]float32, len(ibytes)),
		Labels:  make([]int, n),
		N:       n,
		C:       1,
		H:       h,
		W:       w,
		Classes: names,
	}
	for i, b := range lbytes {
		if int(b) >= len(names) {
			return nil, errors.Errorf("data: idx file %s record %d: label %d, expected 0..%d (%d classes)", lblPath, i, b, len(names)-1, len(names))
		}
		d.Labels[i] = int(b)
	}
	for i, b := range ibytes {
		d.Images[i] = byteScale[b]
	}
	return d, nil
}

// readIDX reads an unsigned-byte IDX file, plain or gzipped (recognised by
// its first two bytes, whatever its name), and returns its dimensions and
// data. The amount of data the header announces is checked against what the
// file can hold before it is allocated: exactly, for a plain file; against
// the deflate expansion bound, for a gzipped one, whose data is then read
// through an io.LimitReader so that memory grows only with what really
// arrives.
//
// wantN > 0 requires the first dimension (the record count) to be wantN, the
// count found in the file wantFrom.
func readIDX(path string, magic uint32, what string, wantN int, wantFrom string) (dims []int, data []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, errors.Wrapf(err, "data: idx file %s", path)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, errors.Wrapf(err, "data: idx file %s", path)
	}
	size := st.Size()
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	sniff, _ := br.Peek(2)
	gz := len(sniff) == 2 && sniff[0] == 0x1f && sniff[1] == 0x8b
	if gz {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, errors.Wrapf(err, "data: idx file %s: bad gzip header", path)
		}
		defer zr.Close()
		r = zr
	}

	ndim := int(magic & 0xff)
	hdrLen := 4 + 4*ndim
	hdr := make([]byte, hdrLen)
	if k, err := io.ReadFull(r, hdr); err != nil {
		return nil, nil, errors.Errorf("data: idx file %s: header truncated: read %d of %d bytes (%v)", path, k, hdrLen, err)
	}
	if got := binary.BigEndian.Uint32(hdr); got != magic {
		return nil, nil, errors.Errorf("data: idx file %s: magic number 0x%08x, expected 0x%08x (IDX %s: unsigned bytes, %d dimension(s))", path, got, magic, what, ndim)
	}
	if n := binary.BigEndian.Uint32(hdr[4:]); wantN > 0 && uint64(n) != uint64(wantN) {
		return nil, nil, errors.Errorf("data: idx file %s: header counts %d %s, but %s has %d labels; expected the counts to agree", path, n, what, wantFrom, wantN)
	}

	dims = make([]int, ndim)
	for i := range dims {
		v := binary.BigEndian.Uint32(hdr[4+4*i:])
		if v == 0 {
			return nil, nil, errors.Errorf("data: idx file %s: dimension %d of the header %v is 0, expected at least 1", path, i, headerDims(hdr, ndim))
		}
		dims[i] = int(v)
	}
	// The data size the header announces, refused if absurd (overflow-safe:
	// every factor is < 2^32 and the running product stays ≤ 2^62).
	want := uint64(1)
	for _, v := range dims {
		if want > (1<<62)/uint64(v) {
			return nil, nil, errors.Errorf("data: idx file %s: header dimensions %v need more than 2^62 data bytes, refusing it", path, dims)
		}
		want *= uint64(v)
	}

	if !gz {
		var have uint64
		if size > int64(hdrLen) {
			have = uint64(size) - uint64(hdrLen)
		}
		if want > have {
			return nil, nil, errors.Errorf("data: idx file %s: header dimensions %v need %d data bytes after the %d-byte header, but the file has only %d; refusing it",
				path, dims, want, hdrLen, have)
		}
		if want < have {
			return nil, nil, errors.Errorf("data: idx file %s: header dimensions %v need %d data bytes after the %d-byte header, but the file has %d",
				path, dims, want, hdrLen, have)
		}
		data = make([]byte, want)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, nil, errors.Wrapf(err, "data: idx file %s: reading %d data bytes", path, want)
		}
		return dims, data, nil
	}
	if bound := uint64(size)*deflateMaxRatio + 1<<16; want > bound {
		return nil, nil, errors.Errorf("data: idx file %s: header dimensions %v need %d data bytes, but a %d-byte gzip file decompresses to at most %d (deflate expands at most %d:1); refusing it",
			path, dims, want, size, bound, deflateMaxRatio)
	}
	data, err = io.ReadAll(io.LimitReader(r, int64(want)+1))
	if err != nil {
		return nil, nil, errors.Wrapf(err, "data: idx file %s: decompressing after %d of %d data bytes", path, len(data), want)
	}
	if uint64(len(data)) != want {
		if uint64(len(data)) < want {
			return nil, nil, errors.Errorf("data: idx file %s: header dimensions %v need %d data bytes, but the decompressed file has only %d (record %d is incomplete)",
				path, dims, want, len(data), uint64(len(data))/(want/uint64(dims[0])))
		}
		return nil, nil, errors.Errorf("data: idx file %s: header dimensions %v need %d data bytes, but the decompressed file has more", path, dims, want)
	}
	return dims, data, nil
}

func headerDims(hdr []byte, ndim int) []uint32 {
	d := make([]uint32, ndim)
	for i := range d {
		d[i] = binary.BigEndian.Uint32(hdr[4+4*i:])
	}
	return d
}
