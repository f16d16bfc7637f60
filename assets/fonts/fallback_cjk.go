//go:build !android && !windows && !darwin && !ios

package fonts

import "io/fs"

// Linux and the BSDs: a minimal install has no CJK font.
func fallbackCJK() fs.FS { return cjk() }
