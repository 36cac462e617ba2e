package wechat

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is the web-WeChat slice of qunshao's configuration.
type Config struct {
	Accounts []Account `yaml:"accounts"`
}

// Account is one WeChat account logged in through web WeChat. Desktop is
// true unless the YAML says otherwise; an Account written as a Go literal
// must set it.
type Account struct {
	Name        string `yaml:"name"`         // operator's label for the account, used in status and file names
	StorageFile string `yaml:"storage_file"` // hot-login storage (default data/wechat-<name>.json)
	Desktop     bool   `yaml:"desktop"`      // desktop (UOS) mode; default true
}

// DefaultConfig returns the configuration without accounts: web WeChat is
// opt-in because every account needs an operator to scan a QR code.
func DefaultConfig() Config { return Config{} }

// knownAccountKey reports whether k is a key an account may have; anything
// else is a typo the operator should hear about, as the rest of qunshao's
// configuration refuses unknown keys.
func knownAccountKey(k string) bool {
	switch k {
	case "name", "storage_file", "desktop":
		return true
	}
	return false
}

// UnmarshalYAML decodes an account with desktop mode on unless the file
// says otherwise: a plain bool would silently default to the web mode,
// which WeChat refuses for most accounts.
func (a *Account) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if !knownAccountKey(k.Value) {
				return fmt.Errorf("line %d: field %s not found in type wechat.Account", k.Line, k.Value)
			}
		}
	}
	type plain Account
	p := plain{Desktop: true}
	if err := n.Decode(&p); err != nil {
		return err
	}
	*a = Account(p)
	return nil
}

// Validate checks every account; each error names its key relative to this
// slice, e.g. "accounts[0].name: is empty".
func (c Config) Validate() error {
	var errs []error
	names := map[string]int{}
	files := map[string]int{}
	for i, a := range c.Accounts {
		key := fmt.Sprintf("accounts[%d]", i)
		switch {
		case a.Name == "":
			errs = append(errs, fmt.Errorf("%s.name: is empty", key))
		case !validName(a.Name):
			errs = append(errs, fmt.Errorf("%s.name: %q may hold only letters, digits, '-' and '_', at most 64 of them (it names files)", key, a.Name))
		default:
			if j, dup := names[a.Name]; dup {
				errs = append(errs, fmt.Errorf("%s.name: %q is also the name of accounts[%d]", key, a.Name, j))
			}
			names[a.Name] = i
		}
		if strings.ContainsRune(a.StorageFile, 0) {
			errs = append(errs, fmt.Errorf("%s.storage_file: contains a NUL byte", key))
			continue
		}
		if a.StorageFile != "" && (strings.HasSuffix(a.StorageFile, "/") || strings.HasSuffix(a.StorageFile, string(filepath.Separator))) {
			errs = append(errs, fmt.Errorf("%s.storage_file: %q names a directory, want a file", key, a.StorageFile))
			continue
		}
		if a.Name == "" && a.StorageFile == "" {
			continue
		}
		f := filepath.Clean(a.storageFile())
		if j, dup := files[f]; dup {
			// Two accounts writing one session file would log each other out.
			errs = append(errs, fmt.Errorf("%s.storage_file: %q is also used by accounts[%d]", key, f, j))
		}
		files[f] = i
	}
	return errors.Join(errs...)
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// storageFile is the hot-login file of the account.
func (a Account) storageFile() string {
	if a.StorageFile != "" {
		return a.StorageFile
	}
	return filepath.Join("data", "wechat-"+a.Name+".json")
}

// sidecar names a file that lives next to the hot-login file, e.g.
// data/wechat-ops-identities.json for data/wechat-ops.json.
func (a Account) sidecar(suffix string) string {
	f := a.storageFile()
	return strings.TrimSuffix(f, filepath.Ext(f)) + suffix
}

// identitiesFile keeps the derived member and group identities across
// restarts.
func (a Account) identitiesFile() string { return a.sidecar("-identities.json") }

// undeliveredFile receives what was received but could not be handed to
// the sink (refused events, unparseable sync responses), so that nothing
// received is lost.
func (a Account) undeliveredFile() string { return a.sidecar("-undelivered.jsonl") }
