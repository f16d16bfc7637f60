package fonts

import (
	"embed"
	"io/fs"
)

//go:embed cjk
var cjkFiles embed.FS

// cjk is the Korean and Chinese fonts, 4.4 MB of the 5.2.
func cjk() fs.FS {
	sub, err := fs.Sub(cjkFiles, "cjk")
	if err != nil {
		panic(err) // "cjk" is embedded above
	}
	return sub
}
