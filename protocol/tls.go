package protocol

import (
	"crypto/sha256"
	"encoding/hex"
)

// CertFingerprint is how clients show and pin a server's certificate and
// how the server logs its own: "SHA256:" and the hex SHA-256 of the DER
// certificate, the digest `openssl x509 -noout -fingerprint -sha256`
// prints (there with colons).
func CertFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "SHA256:" + hex.EncodeToString(sum[:])
}
