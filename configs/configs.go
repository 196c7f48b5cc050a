package configs

import (
	"embed"
	"fmt"
	"io/fs"
)

// FS holds the shipped configuration files (see the package documentation for the layout).
//
//go:embed robots policies tasks checkpoints
var FS embed.FS

// Robots returns the names of the shipped robots, sorted: the directories under robots/.
func Robots() ([]string, error) {
	entries, err := fs.ReadDir(FS, "robots")
	if err != nil {
		return nil, fmt.Errorf("configs: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}
