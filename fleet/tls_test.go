package fleet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// writeCert makes a self-signed certificate for 127.0.0.1 and writes cert.pem and key.pem.
func writeCert(t *testing.T, dir string) (cert, key string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flowact-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestFleetTLS: a server requiring TLS accepts a robot configured with its CA and refuses one
// without it.
func TestFleetTLS(t *testing.T) {
	cert, key := writeCert(t, t.TempDir())
	tc, err := ServerTLS(cert, key, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, ServerConfig{TLS: tc})
	url := srv.ClientURL() // tls://...

	good := Config{Robot: "r1", URL: url, TLS: TLS{CA: cert}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	nc := connect(t, good, "")
	poll(t, 10*time.Second, "a TLS connection", nc.IsConnected)
	if st, err := nc.TLSConnectionState(); err != nil || !st.HandshakeComplete {
		t.Errorf("connected without a TLS handshake: %v", err)
	}

	// Without the CA (the system's roots do not know the test's), the handshake fails.
	if bad, err := nats.Connect(url); err == nil {
		bad.Close()
		t.Error("connected with a server certificate no root vouches for")
	}
}
