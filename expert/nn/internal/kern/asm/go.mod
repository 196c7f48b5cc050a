// The generator of the kernel package's assembly: a module of its own so that avo and its
// dependencies stay out of flowact's go.mod (see ../doc.go).
module github.com/flowact/flowact/expert/nn/internal/kern/asm

go 1.26

require github.com/mmcloughlin/avo v0.5.0

require (
	golang.org/x/mod v0.6.0 // indirect
	golang.org/x/sys v0.1.0 // indirect
	golang.org/x/tools v0.2.0 // indirect
)
