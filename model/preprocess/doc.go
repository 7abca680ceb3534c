// Package preprocess turns image files into the tensors a ViT takes: it
// decodes PNG and JPEG with a pixel limit checked from the header, converts
// colour, crops and resamples to the model's square size, and normalises
// per channel. Training (train/data's image-folder reader) and inference
// (model.Classifier, cmd/infer) both use it, so a model sees at inference
// exactly what it saw in training.
//
// Where to start: DecodeFile reads an image; a Transform converts it to
// C×H×W values in [0,1] (Transform.Pixels) and normalises them (its Norm,
// Normalization.Apply). TrainTransform is this package's training pipeline
// (ToCHW); TimmEval, TorchvisionEval and HFProcessor are the evaluation
// transforms of published weights, computed as PIL and torchvision compute
// them (Image8: PIL's 8-bit images, its antialiased Resize, torchvision's
// CenterCrop). ListImages expands command-line arguments (files and
// directories) into image files.
//
// # Published weights
//
// An Image8 is what PIL holds after convert("RGB") or convert("L"): alpha
// dropped, JPEG chroma upsampled and converted to RGB as libjpeg does. Resize is PIL's
// Image.resize: separable convolution with the filter widened by the scale
// when shrinking (antialiasing), in PIL's 22-bit fixed point with an 8-bit
// image between the horizontal and the vertical pass, so a PNG gives PIL's
// pixels exactly (testdata/published: timm, torchvision and Hugging Face
// transforms of real photos); a JPEG differs only by the decoders' inverse
// DCTs (a mean absolute difference of at most 0.001 in normalised units on
// the test photos).
//
// # The training pipeline
//
// A pixel's colour is read through the standard library's colour model
// (16-bit, alpha-premultiplied, so transparent areas come out composited
// over black) and scaled to [0,1]. With 3 channels a gray image is copied to
// R, G and B. With 1 channel a pixel whose R, G and B are equal keeps that
// value exactly; any other gets the ITU-R BT.601 luma 0.299·R + 0.587·G +
// 0.114·B.
//
// Geometry: the centred square of side min(width, height) is cut out
// (offset ⌊(long − short)/2⌋ along the longer side) and resampled to
// size×size — the same as resizing the shorter side to size and
// centre-cropping, up to sub-pixel rounding of the crop. The resampling is
// separable: along an axis that shrinks, area averaging (each output pixel
// is the mean of the input area it covers, partial pixels weighted by their
// covered fraction — exact block means for integer factors); along an axis
// that grows, linear interpolation between pixel centres (edges clamped).
// An image already of the right size is copied unchanged.
//
// # Errors
//
// Errors start with "preprocess:" and name the file where there is one. A
// missing file satisfies errors.Is(err, fs.ErrNotExist); a file that is
// neither PNG nor JPEG satisfies errors.Is(err, image.ErrFormat); an image
// over MaxPixels satisfies errors.Is(err, ErrTooManyPixels).
package preprocess
