#!/usr/bin/env python3
"""Independent verifier of trailvault proofs (see docs/integrity.md), so an auditor need not
trust the trailvault binary. Needs only hashlib and the `cryptography` package.

usage: verify_proof.py PROOF.json KEYS_DIR     (KEYS_DIR holds public-keys.json)
Exit status 0 if the proof holds, 1 if not."""
import base64, hashlib, json, struct, sys
from datetime import datetime
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

def H(b): return hashlib.sha256(b).digest()
def leaf(d): return H(b"\x00" + d)
def node(l, r): return H(b"\x01" + l + r)

def verify_inclusion(h, index, size, path, root):  # RFC 9162 2.1.3.2
    if index >= size: return False
    fn, sn, r = index, size - 1, h
    for p in path:
        if sn == 0: return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0: fn >>= 1; sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1; sn >>= 1
    return sn == 0 and r == root

def verify_consistency(m, n, old, new, path):  # RFC 9162 2.1.4.2
    if m > n: return False
    if m == n: return not path and old == new
    if m == 0: return not path
    if not path: return False
    if m & (m - 1) == 0: path = [old] + path
    fn, sn = m - 1, n - 1
    while fn & 1: fn >>= 1; sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0: return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0: fn >>= 1; sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1; sn >>= 1
    return fr == old and sr == new and sn == 0

def ms(t): return int(round(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000))

def load_keys(d):
    keys = {}
    for k in json.load(open(d + "/public-keys.json"))["keys"]:
        der = base64.b64decode(k["value"])
        assert hashlib.md5(der).hexdigest() == k["fingerprint"], "fingerprint mismatch"
        end = k["validityEndTime"]
        keys[k["fingerprint"]] = (k["algorithm"], serialization.load_der_public_key(der),
                                  ms(k["validityStartTime"]), ms(end) if end else None)
    return keys

def verify_sig(keys, fp, alg, at, msg, sig):
    algorithm, pub, start, end = keys[fp]  # KeyError: unknown key
    if algorithm != alg or at < start or (end is not None and at >= end): return False
    try:
        if alg == "Ed25519": pub.verify(sig, msg)
        else: pub.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())
        return True
    except Exception:
        return False

def checkpoint(text, keys):
    body, sig = text.split("\n\n", 1)
    lines = body.split("\n")
    origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2])
    t = ms(lines[3][len("time "):])
    _, alg, fp = lines[4].split(" ")
    so, sb = sig.split("\n")[0][2:].rsplit(" ", 1)
    assert so == origin, "signature line names another origin"
    assert verify_sig(keys, fp, alg, t, (body + "\n").encode(), base64.b64decode(sb)), "checkpoint signature"
    return size, root

def lp(b): return struct.pack(">I", len(b)) + b

def verify_event(p, keys):
    e, s, d, c = p["event"], p["segment"], p["digest"], p["checkpoint"]
    enc = (b"\x01" + lp(e["eventId"].encode()) + struct.pack(">qq", e["timestamp"], e["ingestionTime"])
           + lp(e["logGroup"].encode()) + lp(e["logStream"].encode()) + lp(e["message"].encode()))
    h = leaf(enc)
    assert h.hex() == e["leafHash"], "leaf hash"
    path = [bytes.fromhex(x) for x in s["inclusionPath"]]
    assert verify_inclusion(h, s["leafIndex"], s["eventCount"], path, bytes.fromhex(s["merkleRoot"])), "event not in segment"
    raw = base64.b64decode(d["content"])
    dg = json.loads(raw)
    assert dg["digestObject"] == d["object"], "digest moved"
    assert any(x["object"] == s["object"] and x["merkleRoot"] == s["merkleRoot"] and x["eventCount"] == s["eventCount"]
               for x in dg["segments"]), "segment not listed by the digest"
    sts = "\n".join([dg["digestEndTime"], dg["digestObject"], H(raw).hex(), dg["previousDigestSignature"] or "null"])
    assert verify_sig(keys, dg["digestPublicKeyFingerprint"], dg["digestSignatureAlgorithm"], ms(dg["digestSigningTime"]),
                      sts.encode(), bytes.fromhex(d["signature"])), "digest signature"
    size, root = checkpoint(c["text"], keys)
    cpath = [bytes.fromhex(x) for x in c["inclusionPath"]]
    assert c["digestTreeIndex"] == dg["digestTreeIndex"], "tree index"
    assert verify_inclusion(leaf(H(raw)), dg["digestTreeIndex"], size, cpath, root), "digest not in checkpoint"
    return "event %s in %s, signed digest %s, checkpoint of %d digests" % (e["eventId"], s["object"], d["object"], size)

def verify_consistency_proof(p, keys):
    (m, old), (n, new) = checkpoint(p["oldCheckpoint"], keys), checkpoint(p["newCheckpoint"], keys)
    path = [bytes.fromhex(x) for x in p["consistencyPath"]]
    assert verify_consistency(m, n, old, new, path), "new checkpoint does not extend the old"
    return "checkpoint of %d digests extends checkpoint of %d digests" % (n, m)

if __name__ == "__main__":
    proof, keys = json.load(open(sys.argv[1])), load_keys(sys.argv[2])
    try:
        f = verify_event if proof["proofType"] == "event" else verify_consistency_proof
        print("valid: " + f(proof, keys))
    except (AssertionError, KeyError, ValueError) as err:
        print("INVALID: %r" % (err,)); sys.exit(1)
