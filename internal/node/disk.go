package node

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/agentid/agentid/internal/nodeapi"
)

// CacheFile is the name of the node's cache in its data directory.
const CacheFile = "node-cache.json"

// cacheVersion is the format of the cache file; a file of another version
// is not loaded.
const cacheVersion = 1

// maxCacheFile bounds the cache file read at start.
const maxCacheFile = 64 << 20

// diskCache is the cache file: everything a node needs to serve its
// workloads after a restart without the server. It holds private keys
// (PKCS #8 DER, base64 in JSON): mode 0600.
type diskCache struct {
	Version     int    `json:"version"`
	TrustDomain string `json:"trust_domain"`
	NodeID      string `json:"node_id"`
	// NodeSVID is the node's own X.509-SVID and key.
	NodeSVID *diskSVID `json:"node_svid,omitempty"`
	// Bundle is the trust domain's SPIFFE bundle document: from the
	// attestation answer, then from each snapshot.
	Bundle json.RawMessage `json:"bundle,omitempty"`
	// Snapshot is the last snapshot of the watch stream.
	Snapshot *nodeapi.Snapshot `json:"snapshot,omitempty"`
	// AgentSVIDs are the agents' X.509-SVIDs and keys, by agent id.
	AgentSVIDs map[string]diskSVID `json:"agent_svids,omitempty"`
}

// diskSVID is an X.509-SVID with its key in the cache file.
type diskSVID struct {
	SPIFFEID  string    `json:"spiffe_id"`
	CertChain [][]byte  `json:"cert_chain"`
	Key       []byte    `json:"key"`
	ExpiresAt time.Time `json:"expires_at"`
	// ReceivedAt is when the node received it, from which its renewal
	// time is counted.
	ReceivedAt time.Time `json:"received_at,omitzero"`
}

// disk is the cache file of a data directory.
type disk struct {
	dir string
}

// path is the cache file's path.
func (d disk) path() string { return filepath.Join(d.dir, CacheFile) }

// prepare creates the data directory (0700) when it does not exist and
// removes temporary files a crash left behind. It reports whether an
// existing directory is open to other users.
func (d disk) prepare() (open bool, err error) {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return false, fmt.Errorf("node: data directory: %w", err)
	}
	fi, err := os.Stat(d.dir)
	if err != nil {
		return false, fmt.Errorf("node: data directory: %w", err)
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("node: data directory %s is not a directory", d.dir)
	}
	tmps, err := filepath.Glob(filepath.Join(d.dir, CacheFile+".tmp-*"))
	if err != nil {
		return false, fmt.Errorf("node: data directory: %w", err)
	}
	for _, t := range tmps {
		_ = os.Remove(t)
	}
	return fi.Mode().Perm()&0o077 != 0, nil
}

// load reads the cache file. A missing file is (nil, nil); a file that
// cannot be read or decoded is an error (the node then starts empty).
func (d disk) load() (*diskCache, error) {
	f, err := os.Open(d.path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node: open the cache: %w", err)
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxCacheFile+1))
	if err != nil {
		return nil, fmt.Errorf("node: read the cache: %w", err)
	}
	if len(b) > maxCacheFile {
		return nil, fmt.Errorf("node: the cache is larger than %d bytes", maxCacheFile)
	}
	return decodeCache(b)
}

// decodeCache decodes a cache file's contents.
func decodeCache(b []byte) (*diskCache, error) {
	var c diskCache
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("node: decode the cache: %w", err)
	}
	if c.Version != cacheVersion {
		return nil, fmt.Errorf("node: cache format %d, want %d", c.Version, cacheVersion)
	}
	return &c, nil
}

// save writes the cache file atomically: a temporary file (0600) in the
// data directory, written and fsynced, renamed over the cache, then the
// directory fsynced, so that a crash leaves the old file or the new one.
func (d disk) save(c *diskCache) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("node: encode the cache: %w", err)
	}
	f, err := os.CreateTemp(d.dir, CacheFile+".tmp-*") // mode 0600
	if err != nil {
		return fmt.Errorf("node: write the cache: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("node: write the cache: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("node: write the cache: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("node: write the cache: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("node: write the cache: %w", err)
	}
	if err := os.Rename(tmp, d.path()); err != nil {
		return fmt.Errorf("node: write the cache: %w", err)
	}
	ok = true
	return syncDir(d.dir)
}

// remove deletes the cache file.
func (d disk) remove() error {
	if err := os.Remove(d.path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("node: remove the cache: %w", err)
	}
	return syncDir(d.dir)
}

// syncDir fsyncs a directory, so that a rename or removal in it is
// durable.
func syncDir(dir string) error {
	f, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return fmt.Errorf("node: sync %s: %w", dir, err)
	}
	defer func() { _ = f.Close() }()
	// Some file systems cannot sync a directory (EINVAL): nothing more can
	// be done there.
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("node: sync %s: %w", dir, err)
	}
	return nil
}

// persist writes the cache file when something changed since it was last
// written. Failures are logged: the node serves from memory regardless.
func (c *cache) persist() {
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	c.mu.Lock()
	if c.evicted || c.gen == c.written {
		c.mu.Unlock()
		return
	}
	gen, dc := c.gen, c.toDisk()
	c.mu.Unlock()
	if err := c.disk.save(dc); err != nil {
		c.log.Error("cache file not written", "path", c.disk.path(), "error", err)
		return
	}
	c.written = gen
}

// toDisk is the cache file's contents. c.mu is held.
func (c *cache) toDisk() *diskCache {
	dc := &diskCache{Version: cacheVersion, TrustDomain: c.td, NodeID: c.nodeID, Snapshot: c.snap}
	if c.node != nil {
		if ds, err := encodeSVID(c.node); err == nil {
			dc.NodeSVID = &ds
		}
	}
	if c.trust != nil {
		dc.Bundle = c.trust.raw
	}
	for id, e := range c.svids {
		if e.svid == nil {
			continue
		}
		ds, err := encodeSVID(e.svid)
		if err != nil {
			continue
		}
		if dc.AgentSVIDs == nil {
			dc.AgentSVIDs = map[string]diskSVID{}
		}
		dc.AgentSVIDs[id] = ds
	}
	return dc
}

// encodeSVID is an SVID as the cache file holds it.
func encodeSVID(s *svid) (diskSVID, error) {
	key, err := x509.MarshalPKCS8PrivateKey(s.key)
	if err != nil {
		return diskSVID{}, fmt.Errorf("node: encode a key: %w", err)
	}
	return diskSVID{SPIFFEID: s.spiffeID, CertChain: s.chain, Key: key, ExpiresAt: s.notAfter(), ReceivedAt: s.received}, nil
}

// decodeSVID is an SVID of the cache file, checked as one received.
func decodeSVID(ds diskSVID) (*svid, error) {
	k, err := x509.ParsePKCS8PrivateKey(ds.Key)
	if err != nil {
		return nil, fmt.Errorf("node: cached key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("node: cached key is a %T, want ECDSA", k)
	}
	return newSVID(ds.SPIFFEID, ds.CertChain, key, ds.ReceivedAt)
}

// load fills an empty cache from the cache file. Expired or invalid SVIDs
// are left out (and logged); a snapshot or bundle that does not parse is
// left out with everything that depends on it.
func (c *cache) load(dc *diskCache) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	c.td, c.nodeID = dc.TrustDomain, dc.NodeID
	if dc.NodeSVID != nil {
		s, err := decodeSVID(*dc.NodeSVID)
		if err == nil && s.spiffeID != "spiffe://"+dc.TrustDomain+"/node/"+dc.NodeID {
			err = fmt.Errorf("node: the cached node SVID is for %s, not node %s of %s", s.spiffeID, dc.NodeID, dc.TrustDomain)
		}
		if err != nil {
			c.log.Warn("cached node SVID ignored", "error", err)
		} else {
			c.node = s
		}
	}
	if len(dc.Bundle) > 0 {
		if b, err := parseBundle(c.td, dc.Bundle); err != nil {
			c.log.Warn("cached trust bundle ignored", "error", err)
		} else {
			c.trust = b
		}
	}
	if dc.Snapshot != nil {
		if err := c.setSnapshot(dc.Snapshot); err != nil {
			c.log.Warn("cached snapshot ignored", "error", err)
		}
	}
	for id, ds := range dc.AgentSVIDs {
		if _, ok := c.byID[id]; !ok {
			continue
		}
		s, err := decodeSVID(ds)
		if err != nil {
			c.log.Warn("cached X.509-SVID ignored", "agent_id", id, "error", err)
			continue
		}
		if !s.validAt(now) || s.spiffeID != c.byID[id].SPIFFEID {
			continue
		}
		c.svids[id] = &entry{svid: s}
	}
	c.retrust()
	c.gen, c.written = 1, 1 // what was loaded is what the file holds
}
