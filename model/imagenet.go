package model

import (
	_ "embed"
	"strings"
)

//go:embed imagenet_classes.txt
var imageNetText string

// imageNetClasses are the ImageNet-1k class names in index order
// (imagenet_classes.txt, written by imagenet_classes.py).
var imageNetClasses = strings.Split(strings.TrimSuffix(imageNetText, "\n"), "\n")
