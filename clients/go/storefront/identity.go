package storefront

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc/credentials"
)

// Identity is a workload's mesh identity: the certificate the mesh CA issued to
// it, with its SPIFFE ID as URI SAN, as Istio issues them.
type Identity struct {
	// SpiffeID is spiffe://<trust domain>/ns/<namespace>/sa/<workload>.
	SpiffeID string
	cert     tls.Certificate
	roots    *x509.CertPool
}

// LoadIdentity reads workload's identity from a certificate directory laid out
// as the local mesh writes it: ca.pem, <workload>.pem, <workload>-key.pem.
func LoadIdentity(certsDir, workload string) (*Identity, error) {
	cert, err := tls.LoadX509KeyPair(
		filepath.Join(certsDir, workload+".pem"),
		filepath.Join(certsDir, workload+"-key.pem"),
	)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", workload, err)
	}
	ids := spiffeIDs(cert.Leaf)
	if len(ids) == 0 {
		return nil, fmt.Errorf("identity %s: its certificate carries no SPIFFE ID", workload)
	}
	caPEM, err := os.ReadFile(filepath.Join(certsDir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", workload, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("identity: ca.pem holds no certificate")
	}
	return &Identity{SpiffeID: ids[0], cert: cert, roots: roots}, nil
}

// Namespace is the Kubernetes namespace of the identity's SPIFFE ID (.../ns/<namespace>/sa/...).
func (id *Identity) Namespace() string {
	_, after, _ := strings.Cut(id.SpiffeID, "/ns/")
	namespace, _, _ := strings.Cut(after, "/")
	return namespace
}

// PeerID is the SPIFFE ID workload has in this identity's trust domain and namespace.
func (id *Identity) PeerID(workload string) string {
	return id.SpiffeID[:strings.LastIndex(id.SpiffeID, "/")+1] + workload
}

// Credentials are mutual TLS for calling service: this identity's certificate
// is presented, and the peer is accepted only if the mesh CA issued its
// certificate to the service's SPIFFE ID. Peers are known by SPIFFE ID, not by
// host name, as the mesh's sidecars know each other.
func (id *Identity) Credentials(service string) credentials.TransportCredentials {
	expected := id.PeerID(service)
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{id.cert},
		MinVersion:   tls.VersionTLS12,
		// The chain and the SPIFFE ID are checked below; there is no host name to check.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyPeer(raw, id.roots, expected)
		},
	})
}

func verifyPeer(raw [][]byte, roots *x509.CertPool, expected string) error {
	if len(raw) == 0 {
		return errors.New("the peer presented no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, der := range raw {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("the peer's certificate: %w", err)
		}
		certs[i] = cert
	}
	intermediates := x509.NewCertPool()
	for _, cert := range certs[1:] {
		intermediates.AddCert(cert)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("the peer's certificate is not the mesh CA's: %w", err)
	}
	presented := spiffeIDs(certs[0])
	for _, id := range presented {
		if id == expected {
			return nil
		}
	}
	return fmt.Errorf("peer is %s, expected %s", strings.Join(presented, ", "), expected)
}

func spiffeIDs(cert *x509.Certificate) []string {
	var ids []string
	if cert == nil {
		return ids
	}
	for _, uri := range cert.URIs {
		if uri.Scheme == "spiffe" {
			ids = append(ids, uri.String())
		}
	}
	return ids
}
