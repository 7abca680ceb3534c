#!/usr/bin/python3
"""Generate the PyTorch + PIL fixtures of the published-weights tests.

Run from the repository root:

    /usr/bin/python3 testdata/published/make_fixtures.py

Deterministic: fixed seeds, one CPU thread, float32. Outputs, next to this
script (testdata/published/):

  transforms/<photo>-<name>.png  what the standard evaluation transforms give
                                 for the photos of testdata/photos, before
                                 ToTensor (8-bit RGB, 224x224):
                                   timm         Resize(248, bicubic), CenterCrop(224)
                                                (timm's eval transform, crop_pct 0.9)
                                   torchvision  Resize(256, bilinear), CenterCrop(224)
                                                (torchvision's ViT ImageClassification)
                                   hf           PIL resize to 224x224, bilinear
                                                (ViTImageProcessor, resample=2)
  ../photos/                     the photos (see copy_photos)
  decoded/                       PIL's decoding of two JPEGs (see copy_photos)
  hf-vit/                        a Hugging Face model directory: model.safetensors
                                 (F16, ViTForImageClassification names), config.json,
                                 preprocessor_config.json (ViTImageProcessor)
  vit_timm.safetensors           the same weights in timm's names
  vit_torchvision.safetensors    the same weights in torchvision's names
  model_outputs.json             what torchvision's VisionTransformer computes with them:
                                 the probabilities of the photos through the Hugging Face
                                 pipeline, and the logits of ../photos/chelsea-32.png
                                 (already of the input size) under both normalisations
  export_io.safetensors          torchvision's logits, for a random input, of export/torchvision.safetensors
                                 (weights exported by this package, loaded strictly; export/'s timm
                                 and Hugging Face files are checked to hold the same tensors)
  transforms.json                per file: the mean of each channel after ToTensor
                                 and Normalize, as a cross-check
  VERSIONS.txt                   tool versions and the exact command
"""

import json
import math
import os
import platform
import sys

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(OUT_DIR))
sys.path.insert(0, os.path.dirname(OUT_DIR))  # testdata/, for fixturelib

torch.manual_seed(0)
torch.set_num_threads(1)

PHOTOS = ["chelsea.png", "rocket.jpg", "coffee.jpg", "chelsea-small.png"]
SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data"  # Debian's python3-skimage
SIZE = 224
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
HALF = ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])

TRANSFORMS = {
    # timm's transforms_imagenet_eval: scale_size = floor(img_size / crop_pct).
    "timm": (T.Compose([T.Resize(math.floor(SIZE / 0.9), interpolation=InterpolationMode.BICUBIC),
                        T.CenterCrop(SIZE)]), HALF),
    # torchvision's ViT_B_16_Weights.IMAGENET1K_V1.transforms(): resize 256, crop 224.
    "torchvision": (T.Compose([T.Resize(SIZE * 256 // 224, interpolation=InterpolationMode.BILINEAR),
                               T.CenterCrop(SIZE)]), IMAGENET),
    # ViTImageProcessor: PIL resize to size x size with resample 2 (bilinear), no crop.
    "hf": (lambda im: im.resize((SIZE, SIZE), resample=Image.BILINEAR), HALF),
}


def copy_photos():
    """testdata/photos: chelsea.png and rocket.jpg as skimage ships them
    (rocket.jpg: a JPEG without chroma subsampling), coffee.jpg encoded here
    from skimage's coffee.png by PIL at quality 90 (4:2:0 chroma
    subsampling, the common case)."""
    d = os.path.join(ROOT, "testdata", "photos")
    os.makedirs(d, exist_ok=True)
    os.makedirs(os.path.join(OUT_DIR, "decoded"), exist_ok=True)
    for name in ("chelsea.png", "rocket.jpg"):
        with open(os.path.join(SKIMAGE, name), "rb") as src, open(os.path.join(d, name), "wb") as dst:
            dst.write(src.read())
    Image.open(os.path.join(SKIMAGE, "coffee.png")).convert("RGB").save(os.path.join(d, "coffee.jpg"), quality=90)
    # A photo smaller than the model's input (the transforms enlarge it),
    # with an alpha channel that PIL's convert("RGB") drops.
    small = Image.open(os.path.join(SKIMAGE, "chelsea.png")).convert("RGB").crop((150, 40, 270, 130)).convert("RGBA")
    alpha = Image.linear_gradient("L").resize(small.size)
    small.putalpha(alpha)
    small.save(os.path.join(d, "chelsea-small.png"))
    # Its gray version as PIL's convert("L") computes it (for the 1-channel test).
    small.convert("RGB").convert("L").save(os.path.join(OUT_DIR, "decoded", "chelsea-small-gray.png"))
    # A small 4:2:2 JPEG (chroma halved horizontally only) and PIL's decoding
    # of it and of coffee.jpg's top-left corner, for the chroma upsampling test.
    crop = Image.open(os.path.join(SKIMAGE, "chelsea.png")).convert("RGB").crop((100, 60, 228, 156))
    crop.save(os.path.join(d, "chelsea-422.jpg"), quality=90, subsampling=1)
    Image.open(os.path.join(d, "chelsea-422.jpg")).convert("RGB").save(os.path.join(OUT_DIR, "decoded", "chelsea-422.png"))
    Image.open(os.path.join(d, "coffee.jpg")).convert("RGB").crop((0, 0, 96, 64)).save(
        os.path.join(OUT_DIR, "decoded", "coffee-corner.png"))


def photo(name):
    return Image.open(os.path.join(ROOT, "testdata", "photos", name)).convert("RGB")


def transform_fixtures():
    out = {}
    os.makedirs(os.path.join(OUT_DIR, "transforms"), exist_ok=True)
    for p in PHOTOS:
        im = photo(p)
        for name, (tf, (mean, std)) in TRANSFORMS.items():
            res = tf(im)
            assert res.size == (SIZE, SIZE) and res.mode == "RGB", (p, name, res.size, res.mode)
            fname = f"{os.path.splitext(p)[0]}-{name}.png"
            res.save(os.path.join(OUT_DIR, "transforms", fname), optimize=True)
            x = T.Normalize(mean, std)(T.ToTensor()(res))
            back = T.Normalize(mean, std)(T.ToTensor()(Image.open(os.path.join(OUT_DIR, "transforms", fname))))
            assert torch.equal(x, back), fname  # the PNG holds the transform's output exactly
            out[fname] = {"photo": p, "transform": name, "size": SIZE, "mean": mean, "std": std,
                          "channel_means": [float(v) for v in x.mean(dim=(1, 2))]}
            print(f"{fname}: {im.size} -> {res.size}")
    with open(os.path.join(OUT_DIR, "transforms.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


# ----------------------------------------------------------------------------
# A small ViT with the same weights in Hugging Face's, timm's and
# torchvision's names, and what PyTorch computes with them.
# ----------------------------------------------------------------------------
M = dict(image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=128, mlp_dim=256, num_classes=10)
LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def build_model():
    """torchvision's VisionTransformer with every parameter random (seeded)
    and rounded to half precision, the precision of the files."""
    from torchvision.models.vision_transformer import VisionTransformer

    model = VisionTransformer(**M, dropout=0.0, attention_dropout=0.0).float().eval()
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=gen)
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "encoder.ln.weight":
                v = 1.0 + 0.2 * r
            elif name in ("class_token", "encoder.pos_embedding") or name.endswith("bias"):
                v = 0.2 * r
            elif name == "conv_proj.weight":
                v = r / math.sqrt(p.shape[1] * p.shape[2] * p.shape[3])
            elif name == "heads.head.weight":
                v = 4 * r / math.sqrt(p.shape[1])  # confident enough that the top classes are clear
            else:
                v = r / math.sqrt(p.shape[1])
            p.copy_(v.half().float())
    return model


def model_fixtures():
    from fixturelib import torchvision_to_hf, torchvision_to_timm, write_safetensors

    model = build_model()
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    layers = M["num_layers"]
    hf_dir = os.path.join(OUT_DIR, "hf-vit")
    os.makedirs(hf_dir, exist_ok=True)
    write_safetensors(os.path.join(hf_dir, "model.safetensors"), torchvision_to_hf(sd, layers), {"format": "pt"}, dtype="F16")
    write_safetensors(os.path.join(OUT_DIR, "vit_timm.safetensors"), torchvision_to_timm(sd, layers), {"format": "pt"}, dtype="F16")
    write_safetensors(os.path.join(OUT_DIR, "vit_torchvision.safetensors"), list(sd.items()), dtype="F16")
    config = {
        "architectures": ["ViTForImageClassification"], "model_type": "vit",
        "image_size": M["image_size"], "patch_size": M["patch_size"], "num_channels": 3,
        "hidden_size": M["hidden_dim"], "num_hidden_layers": layers, "num_attention_heads": M["num_heads"],
        "intermediate_size": M["mlp_dim"], "hidden_act": "gelu", "layer_norm_eps": 1e-6, "qkv_bias": True,
        "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
        "id2label": {str(i): n for i, n in enumerate(LABELS)}, "label2id": {n: i for i, n in enumerate(LABELS)},
    }
    processor = {
        "image_processor_type": "ViTImageProcessor", "do_resize": True,
        "size": {"height": M["image_size"], "width": M["image_size"]}, "resample": 2,
        "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": HALF[0], "image_std": HALF[1],
    }
    for name, obj in (("config.json", config), ("preprocessor_config.json", processor)):
        with open(os.path.join(hf_dir, name), "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")

    size = M["image_size"]
    expect = {"hf": {}, "identity": {}}
    with torch.no_grad():
        # 1. The Hugging Face pipeline on photos larger than the input.
        for p in ["chelsea.png", "rocket.jpg", "coffee.jpg"]:
            im = photo(p).resize((size, size), resample=Image.BILINEAR)
            x = T.Normalize(*HALF)(T.ToTensor()(im)).unsqueeze(0)
            probs = torch.softmax(model(x), dim=-1)[0]
            top = torch.argsort(probs, descending=True, stable=True)[:5]
            expect["hf"][p] = {"top": [{"class": int(i), "label": LABELS[int(i)], "prob": float(probs[i])} for i in top],
                               "probs": [float(v) for v in probs]}
        # 2. An image already of the input size: the identity preprocessing,
        # then timm's and torchvision's normalisations.
        small = photo("chelsea.png").resize((size, size), resample=Image.BICUBIC)
        small.save(os.path.join(ROOT, "testdata", "photos", f"chelsea-{size}.png"))
        for norm_name, norm in (("half", HALF), ("imagenet", IMAGENET)):
            x = T.Normalize(*norm)(T.ToTensor()(small)).unsqueeze(0)
            expect["identity"][norm_name] = [float(v) for v in model(x)[0]]
    with open(os.path.join(OUT_DIR, "model_outputs.json"), "w") as f:
        json.dump({"config": M, "expect": expect}, f, indent=1, sort_keys=True)
        f.write("\n")
    print("model fixtures:", {p: [t["label"] for t in e["top"][:2]] for p, e in expect["hf"].items()})


# ----------------------------------------------------------------------------
# Weights exported by this package (go run ./cmd/infer -export, see
# export/README.md) load in PyTorch: torchvision's model strictly, timm's
# and Hugging Face's layouts key for key and shape for shape.
# ----------------------------------------------------------------------------
def export_fixtures():
    from torchvision.models.vision_transformer import VisionTransformer
    from fixturelib import read_safetensors, torchvision_to_hf, torchvision_to_timm, write_safetensors

    d = os.path.join(OUT_DIR, "export")
    with open(os.path.join(d, "hf", "config.json")) as f:
        c = json.load(f)
    model = VisionTransformer(image_size=c["image_size"], patch_size=c["patch_size"], num_layers=c["num_hidden_layers"],
                              num_heads=c["num_attention_heads"], hidden_dim=c["hidden_size"], mlp_dim=c["intermediate_size"],
                              num_classes=len(c["id2label"])).eval()
    assert c["hidden_act"] == "gelu" and c["layer_norm_eps"] == 1e-6, c
    tv, _, _ = read_safetensors(os.path.join(d, "torchvision.safetensors"))
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tv.items()}, strict=True)
    sd = model.state_dict()
    for name, want in (("timm.safetensors", torchvision_to_timm(sd, c["num_hidden_layers"])),
                       (os.path.join("hf", "model.safetensors"), torchvision_to_hf(sd, c["num_hidden_layers"]))):
        got, meta, _ = read_safetensors(os.path.join(d, name))
        assert set(got) == {n for n, _ in want}, (name, set(got) ^ {n for n, _ in want})
        for n, t in want:
            assert tuple(got[n].shape) == tuple(t.shape), (name, n, got[n].shape, t.shape)
            assert np.array_equal(got[n], t.numpy()), (name, n)
        print(f"export/{name}: {len(want)} tensors, the same names, shapes and values as torchvision's state_dict maps to")
    x = torch.randn((4, 3, c["image_size"], c["image_size"]), generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        logits = model(x)
    write_safetensors(os.path.join(OUT_DIR, "export_io.safetensors"), [("input", x), ("logits", logits)])
    print("export logits:", logits[0].tolist())


def versions():
    with open(os.path.join(OUT_DIR, "VERSIONS.txt"), "w") as f:
        f.write(f"python {platform.python_version()}\n")
        f.write(f"torch {torch.__version__}\n")
        f.write(f"torchvision {torchvision.__version__}\n")
        f.write(f"pillow {PIL.__version__}\n")
        f.write(f"numpy {np.__version__}\n")
        f.write("command: /usr/bin/python3 testdata/published/make_fixtures.py  (run from the repository root)\n")


if __name__ == "__main__":
    copy_photos()
    transform_fixtures()
    model_fixtures()
    export_fixtures()
    versions()
