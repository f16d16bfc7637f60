package textdir

import (
	"testing"

	"gioui.org/io/system"
)

func TestOf(t *testing.T) {
	for s, want := range map[string]system.TextDirection{
		"hello":                  system.LTR,
		"שלום עולם":              system.RTL,
		"مرحبا بالعالم":          system.RTL,
		"123, שלום":              system.RTL, // digits and punctuation are not strong
		"😀 שלום":                 system.RTL,
		"hello שלום":             system.LTR, // the first strong letter decides
		"שלום hello":             system.RTL,
		"你好":                     system.LTR,
		"नमस्ते":                 system.LTR,
		"":                       system.LTR,
		"123 😀 !":                system.LTR,
		"\u200fhello":            system.RTL, // a right-to-left mark is strong
		"Привет":                 system.LTR,
		"ی\u200cک":               system.RTL,
		"«שלום», said the guest": system.RTL,
	} {
		if got := Of(s); got != want {
			t.Errorf("Of(%q) = %v, want %v", s, got, want)
		}
		if IsRTL(s) != (want == system.RTL) {
			t.Errorf("IsRTL(%q) = %v", s, IsRTL(s))
		}
	}
}
