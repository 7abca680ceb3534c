package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/model/preprocess"
)

// Metadata keys of the weight files this package writes. Every package
// that reads or writes them uses these names.
const (
	MetaFormat        = "format"        // "pt", as timm's files say
	MetaConfig        = "vit.config"    // the model's Config as JSON
	MetaClasses       = "classes"       // JSON list of class names, index = class
	MetaNormalization = "normalization" // JSON {"Mean": [...], "Std": [...]}, one value per channel
	MetaChecksum      = "checksum"      // SHA-256 of the tensors and the other metadata (see ReadFile)
	MetaPreprocess    = "preprocess"    // JSON preprocess.Transform: how images become inputs (exported weights)
)

// ExtraPrefix starts the names of tensors that a checkpoint carries beside
// the weights (optimizer state and the like). LoadWeights ignores them.
const ExtraPrefix = "train."

// Errors that callers can test for with errors.Is.
var (
	// ErrChecksum: the file's checksum does not match its contents (it was
	// altered or damaged after it was written).
	ErrChecksum = errors.New("model: checksum mismatch")
	// ErrFormat: the file is not a safetensors file this package can read
	// (bad header, truncated, unsupported dtype).
	ErrFormat = errors.New("model: not a readable safetensors file")
	// ErrNoConfig: the file's architecture cannot be told (no metadata,
	// no config.json, tensors that do not say it): build the model with
	// New and call LoadWeights, or give what is missing (File.Heads).
	ErrNoConfig = errors.New("model: the architecture of the weights is unknown")
)

// kindError is an error with a message of its own whose errors.Is cause is
// one of the sentinel errors above.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

func kindErrorf(kind error, format string, args ...any) error {
	return &kindError{kind, fmt.Sprintf(format, args...)}
}

// File is a weight file or checkpoint read into memory: its tensors
// (converted to float64) and its metadata, the checksum verified.
type File struct {
	Path    string
	Tensors map[string]Tensor
	Meta    map[string]string
	// Heads is the number of attention heads of plain weights whose
	// architecture is read from their shapes (which do not tell it); 0
	// means width/64, as in every standard ViT.
	Heads int

	naming, source string // set by Config
}

// ReadFile reads a safetensors file written by this package, by PyTorch,
// timm or Hugging Face; a directory stands for its model.safetensors (a
// Hugging Face model directory). A missing file satisfies errors.Is(err,
// fs.ErrNotExist), a damaged one ErrChecksum or ErrFormat.
func ReadFile(path string) (*File, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "model.safetensors")
	}
	st, meta, err := readSafetensors(path)
	if err != nil {
		return nil, err
	}
	return &File{Path: path, Tensors: st, Meta: meta}, nil
}

// Open reads a file written by SaveWeights (or a training checkpoint) and
// rebuilds its model in g: the config from the metadata, the parameters
// created, the weights loaded. It is ReadFile then File.NewModel; the File
// gives the rest of the metadata (Classes, Normalization).
func Open(g *G.ExprGraph, path string, opts ...Option) (*ViT, *File, error) {
	f, err := ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := f.NewModel(g, opts...)
	if err != nil {
		return nil, nil, err
	}
	return m, f, nil
}

// Config returns the model's architecture, read from, in order: this
// package's metadata ("vit.config"); a Hugging Face config.json beside the
// file; the tensors' names and shapes (File.Heads, or width/64, heads).
// Source tells which. It is checked against the tensors: a config whose
// parameters outnumber the values the file holds is refused, so that a
// damaged or hostile file cannot make New allocate far more memory than the
// file itself holds (NewModel then checks every name and shape). When the
// architecture cannot be told, the error's cause is ErrNoConfig.
func (f *File) Config() (Config, error) {
	var cfg Config
	var err error
	if s, ok := f.Meta[MetaConfig]; ok {
		f.source, f.naming = FromMetadata, namingTimm
		if cfg, err = parseConfig(s); err != nil {
			return cfg, errors.Wrapf(err, "model: %s", f.Path)
		}
	} else {
		if cfg, f.source, err = f.inferConfig(); err != nil {
			return cfg, &kindError{ErrNoConfig, err.Error()}
		}
		if err := cfg.Validate(); err != nil {
			return cfg, errors.Wrapf(err, "model: %s: the %s give", f.Path, f.source)
		}
	}
	var have float64
	for _, t := range f.Tensors {
		have += float64(len(t.Data))
	}
	if need := cfg.numParams(); need > have {
		return cfg, errors.Errorf("model: %s: the config (%v) needs %.4g parameters, but the file holds only %.0f values", f.Path, cfg, need, have)
	}
	return cfg, nil
}

// Source tells where Config found the architecture: FromMetadata,
// FromHFConfig or FromShapes ("" before Config is called).
func (f *File) Source() string { return f.source }

// NewModel creates the file's model in g (New with the stored config and
// opts) and loads its weights.
func (f *File) NewModel(g *G.ExprGraph, opts ...Option) (*ViT, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	m, err := New(g, cfg, opts...)
	if err != nil {
		return nil, err
	}
	if err := m.LoadTensors(f.Tensors); err != nil {
		return nil, errors.Wrapf(err, "model: load %s", f.Path)
	}
	return m, nil
}

// Classes returns the names of the k classes, from, in order: the
// metadata; a Hugging Face config.json's id2label; the ImageNet-1k names
// for 1000 classes; "0", "1", … . note says which fallback was taken ("" for
// the metadata).
func (f *File) Classes(k int) (names []string, note string, err error) {
	s, ok := f.Meta[MetaClasses]
	if !ok {
		hc, _ := f.readHFConfig() // a bad config.json is reported by Config
		if names = hfClasses(hc, k); names != nil {
			return names, fmt.Sprintf("class names from the id2label of %s", f.beside(hfConfigName)), nil
		}
		if k == len(imageNetClasses) {
			return append([]string(nil), imageNetClasses...), "1000 classes without names: the ImageNet-1k names", nil
		}
		names = make([]string, k)
		for i := range names {
			names[i] = strconv.Itoa(i)
		}
		return names, fmt.Sprintf("%s has no %q metadata (plain weights, not a training checkpoint): classes are named 0..%d", f.Path, MetaClasses, k-1), nil
	}
	if err := json.Unmarshal([]byte(s), &names); err != nil {
		return nil, "", errors.Errorf("model: %s: %q metadata is not a JSON list of names: %v", f.Path, MetaClasses, err)
	}
	if len(names) != k {
		return nil, "", errors.Errorf("model: %s: %q metadata lists %d names, expected %d (the model's classes)", f.Path, MetaClasses, len(names), k)
	}
	return names, "", nil
}

// Normalization returns the per-channel normalisation of ch channels stored
// in the metadata. A file without one gets mean 0 and std 1, and a note.
func (f *File) Normalization(ch int) (n preprocess.Normalization, note string, err error) {
	s, ok := f.Meta[MetaNormalization]
	if !ok {
		return preprocess.Identity(ch), fmt.Sprintf("%s has no %q metadata: pixels in [0,1] go in unnormalised (mean 0, std 1)", f.Path, MetaNormalization), nil
	}
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		return n, "", errors.Errorf("model: %s: %q metadata is not JSON {\"Mean\": [...], \"Std\": [...]}: %v", f.Path, MetaNormalization, err)
	}
	return n, "", errors.Wrapf(n.Check(ch), "model: %s: %q metadata", f.Path, MetaNormalization)
}
