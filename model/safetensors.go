package model

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"sort"

	"github.com/nlpodyssey/safetensors"
	"github.com/pkg/errors"
)

// maxSafetensorsHeader is the largest JSON header readSafetensors accepts
// (the same limit as the reference implementation and the library).
const maxSafetensorsHeader = 100_000_000

// Tensor is one tensor read from, or to be written to, a safetensors file:
// a row-major (C order) shape and its values. Values are held as float64
// whatever the dtype in the file. A scalar has an empty shape and one value.
type Tensor struct {
	Shape []int
	Data  []float64
}

// stNumElements returns the number of values the shape describes, or an error
// if a dimension is negative or the product overflows int.
func stNumElements(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, errors.Errorf("negative dimension %d in shape %v", d, shape)
		}
		hi, lo := bits.Mul64(uint64(n), uint64(d))
		if hi != 0 || lo > math.MaxInt {
			return 0, errors.Errorf("shape %v has too many elements", shape)
		}
		n = int(lo)
	}
	return n, nil
}

// stDTypeSize maps the dtypes readSafetensors understands to their sizes.
var stDTypeSize = map[safetensors.DType]int{
	safetensors.F64:  8,
	safetensors.F32:  4,
	safetensors.F16:  2,
	safetensors.BF16: 2,
}

// readSafetensors reads a whole safetensors file and returns its tensors,
// converted to float64, and its "__metadata__" map (empty, never nil, when
// the file has none). Tensor dtypes F32, F64, F16 and BF16 are accepted;
// any other dtype is refused by name.
//
// The header length is checked against the file size and the 100 MB limit
// before anything is allocated for it; offsets and byte counts are validated
// (by the safetensors library, and again here) before any tensor is
// converted. No input makes it panic.
func readSafetensors(path string) (tensors map[string]Tensor, meta map[string]string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, errors.Wrapf(err, "model: read safetensors %s", path)
	}
	defer f.Close()

	fi, err := f.Stat()
	if err != nil {
		return nil, nil, errors.Wrapf(err, "model: read safetensors %s", path)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, kindErrorf(ErrFormat, "model: read safetensors %s: not a regular file (mode %v)", path, fi.Mode())
	}
	size := fi.Size()
	if size < 8 {
		return nil, nil, kindErrorf(ErrFormat, "model: read safetensors %s: file is %d bytes, expected at least 8 for the header length (truncated, or not a safetensors file)", path, size)
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(f, lenBuf[:]); err != nil {
		return nil, nil, errors.Wrapf(err, "model: read safetensors %s: header length", path)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > maxSafetensorsHeader {
		return nil, nil, kindErrorf(ErrFormat, "model: read safetensors %s: header length %d exceeds the limit of %d bytes", path, n, maxSafetensorsHeader)
	}
	if n > uint64(size-8) {
		return nil, nil, kindErrorf(ErrFormat, "model: read safetensors %s: header length %d runs past the end of the %d-byte file (at most %d available): the file is truncated or its header length is damaged", path, n, size, size-8)
	}
	if uint64(size) > uint64(math.MaxInt) {
		return nil, nil, kindErrorf(ErrFormat, "model: read safetensors %s: file of %d bytes is too large", path, size)
	}

	// The whole file is read at its real size (never a size claimed by the
	// header), which is what the library's parser needs.
	buf := make([]byte, int(size))
	copy(buf, lenBuf[:])
	if _, err := io.ReadFull(f, buf[8:]); err != nil {
		return nil, nil, errors.Wrapf(err, "model: read safetensors %s: file shrank while reading", path)
	}
	return parseSafetensors(path, buf)
}

// parseSafetensors decodes a complete safetensors image held in buf. path is
// only used in error messages.
func parseSafetensors(path string, buf []byte) (tensors map[string]Tensor, meta map[string]string, err error) {
	// The library is not supposed to panic on bad input; make sure of it.
	defer func() {
		if r := recover(); r != nil {
			tensors, meta = nil, nil
			err = kindErrorf(ErrFormat, "model: read safetensors %s: malformed file (parser panic: %v)", path, r)
		}
	}()

	if len(buf) < 8 {
		return nil, nil, kindErrorf(ErrFormat, "model: read safetensors %s: file is %d bytes, expected at least 8 for the header length", path, len(buf))
	}
	n := binary.LittleEndian.Uint64(buf[:8])
	if n > maxSafetensorsHeader || n > uint64(len(buf)-8) {
		return nil, nil, kindErrorf(ErrFormat, "model: read safetensors %s: header length %d does not fit the %d-byte file", path, n, len(buf))
	}

	hn, md, err := safetensors.ReadMetadata(buf)
	if err != nil {
		if d := diagnoseHeader(buf[8:8+n], uint64(len(buf))-8-n); d != "" {
			return nil, nil, kindErrorf(ErrFormat, "model: read safetensors %s: %s (%v)", path, d, err)
		}
		return nil, nil, kindErrorf(ErrFormat, "model: read safetensors %s: %v", path, err)
	}
	data := buf[8+hn:]

	infos := md.Tensors()
	names := make([]string, 0, len(infos))
	for name := range infos {
		names = append(names, name)
	}
	sort.Strings(names)

	tensors = make(map[string]Tensor, len(infos))
	entries := make([]stEntry, 0, len(names))
	for _, name := range names {
		info := infos[name]
		size, ok := stDTypeSize[info.DType]
		if !ok {
			return nil, nil, kindErrorf(ErrFormat, "model: read safetensors %s: tensor %q has dtype %s, expected one of F32, F64, F16, BF16", path, name, info.DType)
		}
		shape := make([]int, len(info.Shape))
		for i, d := range info.Shape {
			if d > uint64(math.MaxInt) {
				return nil, nil, kindErrorf(ErrFormat, "model: read safetensors %s: tensor %q has dimension %d in shape %v, too large", path, name, d, info.Shape)
			}
			shape[i] = int(d)
		}
		count, err := stNumElements(shape)
		if err != nil {
			return nil, nil, kindErrorf(ErrFormat, "model: read safetensors %s: tensor %q: %v", path, name, err)
		}
		b, e := info.DataOffsets[0], info.DataOffsets[1]
		if b > e || e > uint64(len(data)) {
			return nil, nil, kindErrorf(ErrFormat, "model: read safetensors %s: tensor %q has data offsets [%d, %d], expected within the %d-byte data section: the file is truncated or its header is damaged", path, name, b, e, len(data))
		}
		if hi, lo := bits.Mul64(uint64(count), uint64(size)); hi != 0 || lo != e-b {
			return nil, nil, kindErrorf(ErrFormat, "model: read safetensors %s: tensor %q of shape %v and dtype %s needs %d bytes, found %d", path, name, shape, info.DType, uint64(count)*uint64(size), e-b)
		}
		tensors[name] = Tensor{Shape: shape, Data: decodeFloats(info.DType, data[b:e], count)}
		entries = append(entries, stEntry{name, info.DType.String(), info.Shape, data[b:e]})
	}

	meta = make(map[string]string, len(md.Metadata()))
	for k, v := range md.Metadata() {
		meta[k] = v
	}
	// Files without a checksum (from other tools, or saved before checksums
	// were added) are read unchecked.
	if want, ok := meta[MetaChecksum]; ok {
		if got := stChecksum(entries, meta); got != want {
			return nil, nil, kindErrorf(ErrChecksum, "model: read safetensors %s: checksum mismatch: the file is corrupt (altered or damaged after it was written); "+
				"stored %s, computed %s", path, want, got)
		}
		delete(meta, MetaChecksum) // verified; callers see only their own metadata
	}
	return tensors, meta, nil
}

// stEntry is one tensor as the checksum sees it: its raw bytes as stored.
type stEntry struct {
	name, dtype string
	shape       []uint64
	data        []byte
}

// stChecksum hashes the tensors (in name order: name, dtype, shape and
// bytes) and the metadata other than the checksum itself (in key order),
// every field length-prefixed. It depends on the content only, not on the
// header's layout.
func stChecksum(entries []stEntry, meta map[string]string) string {
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	h := sha256.New()
	var num [binary.MaxVarintLen64]byte
	put := func(b []byte) {
		h.Write(num[:binary.PutUvarint(num[:], uint64(len(b)))])
		h.Write(b)
	}
	for _, e := range entries {
		put([]byte(e.name))
		put([]byte(e.dtype))
		h.Write(num[:binary.PutUvarint(num[:], uint64(len(e.shape)))])
		for _, d := range e.shape {
			h.Write(num[:binary.PutUvarint(num[:], d)])
		}
		put(e.data)
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		if k != MetaChecksum {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		put([]byte(k))
		put([]byte(meta[k]))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// diagnoseHeader looks for the first (by name) tensor whose header entry is
// inconsistent and describes the problem, so that errors name the tensor.
// It returns "" if it finds nothing specific to say.
func diagnoseHeader(header []byte, dataLen uint64) string {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return fmt.Sprintf("header is not a JSON object: %v", err)
	}
	names := make([]string, 0, len(raw))
	for k := range raw {
		if k != "__metadata__" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	type span struct {
		name       string
		begin, end uint64
	}
	spans := make([]span, 0, len(names))
	for _, name := range names {
		var e struct {
			DType       string   `json:"dtype"`
			Shape       []uint64 `json:"shape"`
			DataOffsets []uint64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw[name], &e); err != nil {
			return fmt.Sprintf("tensor %q: header entry %.60s is not an object with a dtype string, a shape and 2 data offsets (natural numbers)", name, raw[name])
		}
		dt, err := safetensors.ParseDType(e.DType)
		if err != nil {
			return fmt.Sprintf("tensor %q has unknown dtype %q, expected one of F32, F64, F16, BF16", name, e.DType)
		}
		if len(e.DataOffsets) != 2 {
			return fmt.Sprintf("tensor %q has %d data offsets, expected 2", name, len(e.DataOffsets))
		}
		b, end := e.DataOffsets[0], e.DataOffsets[1]
		if b > end || end > dataLen {
			return fmt.Sprintf("tensor %q has data offsets [%d, %d], expected within the %d-byte data section: the file is truncated or its header is damaged", name, b, end, dataLen)
		}
		count := uint64(1)
		for _, d := range e.Shape {
			hi, lo := bits.Mul64(count, d)
			if hi != 0 {
				return fmt.Sprintf("tensor %q: shape %v overflows", name, e.Shape)
			}
			count = lo
		}
		hi, want := bits.Mul64(count, dt.Size())
		if hi != 0 {
			return fmt.Sprintf("tensor %q: shape %v overflows", name, e.Shape)
		}
		if want != end-b {
			return fmt.Sprintf("tensor %q of shape %v and dtype %s needs %d bytes, found %d (offsets [%d, %d])", name, e.Shape, e.DType, want, end-b, b, end)
		}
		spans = append(spans, span{name, b, end})
	}
	// The data section must be covered exactly, without gaps or overlaps.
	sort.Slice(spans, func(i, j int) bool {
		a, b := spans[i], spans[j]
		return a.begin < b.begin || (a.begin == b.begin && a.end < b.end)
	})
	pos := uint64(0)
	for _, sp := range spans {
		if sp.begin != pos {
			return fmt.Sprintf("tensor %q starts at data byte %d, expected %d (gap or overlap between tensors)", sp.name, sp.begin, pos)
		}
		pos = sp.end
	}
	if pos != dataLen {
		if pos > dataLen {
			return fmt.Sprintf("tensors need %d data bytes, but the file has %d: the file is truncated", pos, dataLen)
		}
		return fmt.Sprintf("tensors cover %d bytes, but the data section has %d", pos, dataLen)
	}
	return ""
}

// decodeFloats converts count little-endian values of dtype dt to float64.
// The caller has checked len(b) == count * size(dt).
func decodeFloats(dt safetensors.DType, b []byte, count int) []float64 {
	out := make([]float64, count)
	switch dt {
	case safetensors.F64:
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
	case safetensors.F32:
		for i := range out {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		}
	case safetensors.F16:
		for i := range out {
			out[i] = halfToFloat64(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case safetensors.BF16:
		for i := range out {
			out[i] = bfloat16ToFloat64(binary.LittleEndian.Uint16(b[2*i:]))
		}
	}
	return out
}

// halfToFloat64 decodes an IEEE 754 binary16 value (1 sign, 5 exponent,
// 10 fraction bits), including subnormals, infinities and NaN.
func halfToFloat64(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0: // zero or subnormal: frac · 2^-24
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1+frac/1024, exp-15)
}

// bfloat16ToFloat64 decodes a bfloat16 value: the top 16 bits of a float32.
func bfloat16ToFloat64(h uint16) float64 {
	return float64(math.Float32frombits(uint32(h) << 16))
}

// stView adapts an encoded tensor to the library's View interface. (The
// library's NewTensorView counts a scalar as zero elements, so it is not used.)
type stView struct {
	dtype safetensors.DType
	shape []uint64
	data  []byte
}

func (v stView) DType() safetensors.DType { return v.dtype }
func (v stView) Shape() []uint64          { return v.shape }
func (v stView) Data() []byte             { return v.data }
func (v stView) DataLen() uint64          { return uint64(len(v.data)) }

// stSyncHook, when non-nil, is called with the temporary file just before it
// is synced; tests use it to simulate a failure in the middle of a write.
var stSyncHook func(f *os.File) error

// writeSafetensors writes the tensors listed in names (each must be a key of
// tensors; other entries of the map are not written) to path in the given
// dtype ("F32" or "F64"), with meta as "__metadata__" (nil or empty: none).
//
// The write is atomic: the file is written to a temporary file in the same
// directory, synced, closed and renamed over path, and the directory is then
// synced. On any error before the rename the temporary file is removed and
// an existing file at path is left untouched.
func writeSafetensors(path string, names []string, tensors map[string]Tensor, dtype string, meta map[string]string) (err error) {
	var dt safetensors.DType
	switch dtype {
	case "F32":
		dt = safetensors.F32
	case "F64":
		dt = safetensors.F64
	default:
		return errors.Errorf("model: write safetensors %s: dtype %q, expected \"F32\" or \"F64\"", path, dtype)
	}

	views := make(map[string]stView, len(names))
	for _, name := range names {
		if name == "__metadata__" {
			return errors.Errorf("model: write safetensors %s: %q cannot be a tensor name", path, name)
		}
		if _, dup := views[name]; dup {
			return errors.Errorf("model: write safetensors %s: tensor %q listed twice", path, name)
		}
		t, ok := tensors[name]
		if !ok {
			return errors.Errorf("model: write safetensors %s: tensor %q is listed but not given", path, name)
		}
		v, err := encodeTensor(t, dt)
		if err != nil {
			return errors.Wrapf(err, "model: write safetensors %s: tensor %q", path, name)
		}
		views[name] = v
	}
	info := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		info[k] = v
	}
	entries := make([]stEntry, 0, len(views))
	for name, v := range views {
		entries = append(entries, stEntry{name, v.dtype.String(), v.shape, v.data})
	}
	info[MetaChecksum] = stChecksum(entries, info)

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	perm := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return errors.Errorf("model: write safetensors %s: target exists and is not a regular file (mode %v)", path, fi.Mode())
		}
		perm = fi.Mode().Perm()
	}

	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return errors.Wrapf(err, "model: write safetensors %s: create temporary file", path)
	}
	tmpName := tmp.Name()
	renamed := false
	defer func() {
		if err != nil && !renamed {
			tmp.Close() // may already be closed; the error is irrelevant then
			os.Remove(tmpName)
		}
	}()

	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := safetensors.SerializeToWriter(views, info, w); err != nil {
		return errors.Wrapf(err, "model: write safetensors %s: write %s", path, tmpName)
	}
	if err := w.Flush(); err != nil {
		return errors.Wrapf(err, "model: write safetensors %s: write %s", path, tmpName)
	}
	if err := tmp.Chmod(perm); err != nil {
		return errors.Wrapf(err, "model: write safetensors %s: chmod %s", path, tmpName)
	}
	if stSyncHook != nil {
		if err := stSyncHook(tmp); err != nil {
			return errors.Wrapf(err, "model: write safetensors %s: sync %s", path, tmpName)
		}
	}
	if err := tmp.Sync(); err != nil {
		return errors.Wrapf(err, "model: write safetensors %s: sync %s", path, tmpName)
	}
	if err := tmp.Close(); err != nil {
		return errors.Wrapf(err, "model: write safetensors %s: close %s", path, tmpName)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return errors.Wrapf(err, "model: write safetensors %s: rename %s", path, tmpName)
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return errors.Wrapf(err, "model: write safetensors %s: file written but syncing directory %s failed", path, dir)
	}
	return nil
}

// syncDir fsyncs a directory so that a rename inside it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

// encodeTensor checks that t's data matches its shape and encodes it
// little-endian in dtype dt (F32 or F64). A finite value too large for
// float32 is refused rather than silently turned into an infinity.
func encodeTensor(t Tensor, dt safetensors.DType) (stView, error) {
	count, err := stNumElements(t.Shape)
	if err != nil {
		return stView{}, err
	}
	if count != len(t.Data) {
		return stView{}, errors.Errorf("shape %v needs %d values, found %d", t.Shape, count, len(t.Data))
	}
	shape := make([]uint64, len(t.Shape))
	for i, d := range t.Shape {
		shape[i] = uint64(d)
	}
	var b []byte
	switch dt {
	case safetensors.F64:
		b = make([]byte, 8*count)
		for i, v := range t.Data {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
		}
	case safetensors.F32:
		b = make([]byte, 4*count)
		for i, v := range t.Data {
			f := float32(v)
			if math.IsInf(float64(f), 0) && !math.IsInf(v, 0) {
				return stView{}, errors.Errorf("value %g at index %d does not fit in F32", v, i)
			}
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
		}
	}
	return stView{dtype: dt, shape: shape, data: b}, nil
}
