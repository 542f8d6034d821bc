package storefront

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Endpoints says where the mesh is: every replica's sidecar (mTLS inbound), per service.
type Endpoints map[string][]string

// Discover reads the local mesh's run directory (state.json, written by
// `shopmesh up` and the tests' LocalMesh); SHOPMESH_UPSTREAM_<SERVICE>=host:port[,host:port]
// in environ overrides a service's addresses, with the variable names the
// Python and Node clients read.
func Discover(runDir string, environ []string) (Endpoints, error) {
	found := Endpoints{}
	state, err := os.ReadFile(filepath.Join(runDir, "state.json"))
	switch {
	case err == nil:
		var parsed struct {
			Replicas []struct {
				Service string `json:"service"`
				Inbound string `json:"inbound"`
			} `json:"replicas"`
		}
		if err := json.Unmarshal(state, &parsed); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(runDir, "state.json"), err)
		}
		for _, replica := range parsed.Replicas {
			found[replica.Service] = append(found[replica.Service], replica.Inbound)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	for _, variable := range environ {
		name, value, _ := strings.Cut(variable, "=")
		service, ok := strings.CutPrefix(name, "SHOPMESH_UPSTREAM_")
		if ok && value != "" {
			found[strings.ToLower(service)] = strings.Split(value, ",")
		}
	}
	return found, nil
}
