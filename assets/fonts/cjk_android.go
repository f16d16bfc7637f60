//go:build android

package fonts

import "io/fs"

// cjk is nil on Android: the system has CJK fonts, and the apps need not
// carry 4.4 MB of them (twice, one copy per architecture).
func cjk() fs.FS { return nil }
