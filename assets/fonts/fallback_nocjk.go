//go:build android || windows || darwin || ios

package fonts

import "io/fs"

// Android, Windows, macOS and iOS come with CJK fonts: the apps need not
// carry 4.4 MB of them (on Android, once per architecture). Nothing
// refers to the CJK files then, and the linker leaves them out.
func fallbackCJK() fs.FS { return nil }
