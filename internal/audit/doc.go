// Package audit is agentid's tamper-evident audit trail: the event model,
// its canonical encoding, the hash chain, signed checkpoints, verification
// and export.
//
// # Chain
//
// Every event is encoded canonically (see Event.Canonical: sorted keys, no
// whitespace, minimal string escaping, integers verbatim, times in
// TimeFormat) and sealed at the head of the chain with a gap-free sequence
// number:
//
//	hash(seq) = SHA-256(hash(seq-1) ‖ uint64 big-endian(seq) ‖ body)
//
// with 32 zero bytes as hash(0). The Recorder appends in the caller's store
// transaction, so an event commits exactly when the state change it records
// commits (fail closed).
//
// # Checkpoints
//
// A Checkpointer signs the head with the trust domain's Ed25519 key (kept
// sealed under the root key, see package keys) every N events, in the
// appending transaction, and every T seconds when the head advanced (Run).
// The signed message is CheckpointMessage.
//
// # Verification and its limits
//
// A Verifier takes records in sequence order, recomputes every hash, checks
// that the indexed columns agree with the body, and checks every checkpoint
// signature and that it matches the event at its sequence number. Verify
// runs it over a store, ParseExportLine and the wire types feed it from an
// export. It detects any edit, deletion, insertion or reordering of events
// up to the last checkpoint, and any rewrite of the chain that does not also
// forge a checkpoint signature. Events after the last checkpoint can be
// truncated without detection by design (the chain is still consistent);
// Report.LastCheckpointSeq says how far signatures reach. An attacker who
// can rewrite the whole trail and the checkpoint keys in the store is only
// detected when the verifier pins the public keys (VerifierParams.PinnedKeys).
//
// # Wire shapes
//
// Export is JSON Lines (WriteExportLine): the event's canonical members
// between "seq" first and "prev_hash", "hash" last, hashes in lowercase hex.
// Checkpoints and public keys travel in the admin API's shapes
// (sdk/admin.AuditCheckpoint and AuditKey: lowercase hex for hashes,
// signatures and keys); the CLI turns them back into store records.
package audit
