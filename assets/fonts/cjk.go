//go:build !android

package fonts

import (
	"embed"
	"io/fs"
)

//go:embed cjk
var cjkFiles embed.FS

func cjk() fs.FS {
	sub, err := fs.Sub(cjkFiles, "cjk")
	if err != nil {
		panic(err) // "cjk" is embedded above
	}
	return sub
}
