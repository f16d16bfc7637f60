package protocol

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteSeedCorpus rewrites testdata/fuzz from the golden vectors and
// the malformed inputs of this package's tests when run with -update. The
// corpus is committed so that plain `go test` replays it.
func TestWriteSeedCorpus(t *testing.T) {
	if !*update {
		t.Skip("writes testdata/fuzz only with -update")
	}
	decodeSeeds := map[string][]byte{}
	for _, g := range goldenMessages {
		decodeSeeds[g.name] = Encode(g.msg)[LengthSize:]
	}
	for _, bad := range [][]byte{
		{0x7f, 1, 2},
		{byte(TypeLeave), 10, 'a'},
		{byte(TypeSend), 1, 'r', 1, 'i', 2, 0xff, 0xfe},
		{byte(TypePing), 0x81, 0x00},
		{byte(TypeHello), 'H', 'T', 'T', 'P', 1},
		{byte(TypeJoined), 1, 'r', 1, 'n', 0, 0, 1, 0xff, 0xff, 0x03},
		{byte(TypePresence), 1, 'r', 1, 3, 1, 1, 'a', 2, 1, 'b', 9, 0},
	} {
		decodeSeeds[fmt.Sprintf("malformed-%x", bad[:min(len(bad), 6)])] = bad
	}
	for _, c := range inboxEdgeCases {
		decodeSeeds[c.name] = c.body
	}
	for _, c := range modEdgeCases {
		decodeSeeds[c.name] = c.body
	}
	for _, c := range messagesEdgeCases {
		decodeSeeds[c.name] = c.body
	}
	for _, c := range filesEdgeCases {
		decodeSeeds[c.name] = c.body
	}
	writeCorpus(t, "FuzzDecode", decodeSeeds, func(b []byte) string { return fmt.Sprintf("[]byte(%q)\n", b) })

	var stream []byte
	for _, g := range goldenMessages {
		stream = AppendFrame(stream, g.msg)
	}
	streamSeeds := map[string][]byte{
		"all-goldens":  stream,
		"http-request": []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"tls-hello":    {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03},
		"truncated":    stream[:len(stream)-3],
	}
	writeCorpus(t, "FuzzReadFrame", streamSeeds, func(b []byte) string {
		return fmt.Sprintf("[]byte(%q)\nuint16(1024)\n", b)
	})
}

func writeCorpus(t *testing.T, target string, seeds map[string][]byte, format func([]byte) string) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		data := "go test fuzz v1\n" + format(b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
