"""Speed: one timing harness for every runtime (`measure`), the standard-vs-separable comparison
(`compare`) and its renderers (`render`); `runtimes` is the vocabulary the CLI reads at start-up."""
