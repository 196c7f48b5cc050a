// Package ckpt reads and writes the action expert's checkpoints: a directory holding the weights
// as safetensors (model.safetensors) and a versioned JSON manifest (manifest.json).
//
// # Safetensors
//
// The weights file follows Hugging Face's safetensors format
// (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, N bytes
// of JSON mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// relative to the byte after the header, which may be padded with spaces) plus an optional
// "__metadata__" string map, then the data. Tensors are F32 (little-endian float32) or F16
// (IEEE 754 half precision, half the bytes); either is float32 in memory (Tensor.DType says how
// a tensor is stored). Writing F16 rounds to the nearest half, ties to even, and refuses a
// finite value beyond 65504 rather than store an infinity. The reader is strict: tensors must tile the data exactly (no gaps, no overlap, nothing
// after the last), sizes must match shapes, and the header is capped at 100 MB as in the
// reference implementation. Writers order tensors by name, so a file is a function of its tensors.
//
// # Manifest
//
// The manifest (Manifest) records the format version, the architecture and its hyperparameters
// (opaque JSON the network package decodes), the probability path's scheduler and the
// training-time distribution (name and parameters), the time convention (always "t0_noise": flow
// time 0 is noise, 1 is data, see package expert), the normalization statistics (opaque JSON the
// policy decodes), provenance (data hash, seed, steps, date) and the SHA-256 and dtype of every
// file it names. Save writes the weights as Manifest.Weights.DType (F32 unless set; `flowact
// train --weights-dtype F16` halves a checkpoint) and the optimizer state always as F32, so that
// a resumed run continues bit for bit. Load checks all of it and returns errors wrapping this package's sentinels, naming what
// was wrong.
//
// Memory: Load returns tensors that own their data; nothing aliases the file's bytes.
package ckpt
