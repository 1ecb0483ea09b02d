//! RFC 6962 / RFC 9162 Merkle trees over SHA-256.
//!
//! - `MTH({}) = SHA-256("")`, leaf `SHA-256(0x00 || d)`, node `SHA-256(0x01 || l || r)`; for
//!   `n > 1` leaves the left subtree holds the largest power of two strictly below `n`.
//! - Building level by level and promoting an odd last node unchanged gives exactly that
//!   left-balanced shape, which is what [`MerkleTree`] stores.
//! - Proof verification follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency)
//!   literally; generation follows RFC 6962 §2.1.1 and §2.1.2.

use crate::hash::{sha256, sha256_parts, Hash};

/// The byte a leaf's data is prefixed with before hashing (RFC 6962 domain separation).
pub const LEAF_PREFIX: u8 = 0x00;

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256_parts(&[&[LEAF_PREFIX], data])
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256_parts(&[&[0x01], left, right])
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    sha256(b"")
}

/// Root over already-hashed leaves, in O(n) hashing and O(log n) memory.
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::default();
    for l in leaves {
        frontier.push(*l);
    }
    frontier.root()
}

/// The right edge of a growing tree (one perfect subtree root per set bit of `size`): enough
/// to append leaves and compute the root without keeping the leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Perfect subtree roots, largest (leftmost) first.
    nodes: Vec<Hash>,
}

impl Frontier {
    /// Rebuild from a stored size and its subtree roots; `None` if they do not agree.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Option<Self> {
        (size.count_ones() as usize == nodes.len()).then_some(Frontier { size, nodes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Append one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        // Every trailing one bit of the old size is a perfect subtree that merges now.
        let mut merges = self.size.trailing_ones();
        while merges > 0 {
            // Invariant: nodes.len() == size.count_ones() >= merges.
            let left = self.nodes.pop().unwrap_or_default();
            node = node_hash(&left, &node);
            merges -= 1;
        }
        self.nodes.push(node);
        self.size += 1;
    }

    /// The tree root: the subtree roots folded right to left.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        match it.next() {
            None => empty_root(),
            Some(last) => it.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// A whole tree kept level by level (level 0 = leaf hashes), for proofs.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    pub fn from_leaf_hashes(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let prev = levels.last().map(Vec::as_slice).unwrap_or_default();
            let next: Vec<Hash> = prev
                .chunks(2)
                .map(|c| {
                    if c.len() == 2 {
                        node_hash(&c[0], &c[1])
                    } else {
                        c[0]
                    }
                })
                .collect();
            levels.push(next);
        }
        MerkleTree { levels }
    }

    pub fn from_leaves<T: AsRef<[u8]>>(leaves: &[T]) -> Self {
        Self::from_leaf_hashes(leaves.iter().map(|l| leaf_hash(l.as_ref())).collect())
    }

    pub fn size(&self) -> u64 {
        self.levels[0].len() as u64
    }

    pub fn leaf_hashes(&self) -> &[Hash] {
        &self.levels[0]
    }

    pub fn root(&self) -> Hash {
        match self.levels.last() {
            Some(top) if top.len() == 1 => top[0],
            _ => empty_root(),
        }
    }

    /// The audit path of leaf `index` (RFC 6962 `PATH`), leaf side first; `None` if out of range.
    pub fn inclusion_proof(&self, index: u64) -> Option<Vec<Hash>> {
        if index >= self.size() {
            return None;
        }
        let mut i = index as usize;
        let mut path = Vec::new();
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = i ^ 1;
            if sibling < level.len() {
                path.push(level[sibling]);
            }
            i >>= 1;
        }
        Some(path)
    }

    /// Root of the first `n` leaves (the tree as it was at size `n`).
    pub fn root_at(&self, n: u64) -> Option<Hash> {
        (n <= self.size()).then(|| self.range_root(0, n as usize))
    }

    /// RFC 6962 `PROOF(m, D[n])` between the first `old_size` leaves and the first `new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Option<Vec<Hash>> {
        if old_size > new_size || new_size > self.size() {
            return None;
        }
        let mut out = Vec::new();
        if old_size > 0 && old_size < new_size {
            self.subproof(old_size as usize, 0, new_size as usize, true, &mut out);
        }
        Some(out)
    }

    fn subproof(&self, m: usize, start: usize, n: usize, complete: bool, out: &mut Vec<Hash>) {
        if m == n {
            if !complete {
                out.push(self.range_root(start, start + n));
            }
            return;
        }
        let k = largest_power_of_two_below(n);
        if m <= k {
            self.subproof(m, start, k, complete, out);
            out.push(self.range_root(start + k, start + n));
        } else {
            self.subproof(m - k, start + k, n - k, false, out);
            out.push(self.range_root(start, start + k));
        }
    }

    /// Root of leaves `[start, end)`, using stored levels for aligned perfect subtrees.
    fn range_root(&self, start: usize, end: usize) -> Hash {
        let n = end - start;
        if n == 0 {
            return empty_root();
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let level = n.trailing_zeros() as usize;
            // In a level-by-level tree an aligned perfect subtree is stored as is, unless it
            // hangs past the end (then it was promoted and is not a perfect subtree).
            if let Some(h) = self.levels.get(level).and_then(|l| l.get(start / n)) {
                if end <= self.levels[0].len() {
                    return *h;
                }
            }
        }
        let k = largest_power_of_two_below(n);
        node_hash(
            &self.range_root(start, start + k),
            &self.range_root(start + k, end),
        )
    }
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn largest_power_of_two_below(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// RFC 9162 §2.1.3.2: does `path` prove `leaf` at `index` in the tree of `size` with `root`?
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// RFC 9162 §2.1.4.2: does `path` prove the tree (`new_size`, `new_root`) extends
/// (`old_size`, `old_root`)? Sizes equal: the path must be empty and the roots equal; an
/// empty old tree is extended by every tree.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    path: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return path.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return path.is_empty();
    }
    if path.is_empty() {
        return false;
    }
    let mut proof: Vec<Hash> = Vec::with_capacity(path.len() + 1);
    if old_size.is_power_of_two() {
        proof.push(*old_root);
    }
    proof.extend_from_slice(path);
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (proof[0], proof[0]);
    for c in &proof[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old_root && sr == *new_root && s == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// transparency-dev/merkle `testonly/constants.go` (from the CT C++ test suite).
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn leaves() -> Vec<Vec<u8>> {
        LEAVES.iter().map(|h| hex::decode(h).unwrap()).collect()
    }

    #[test]
    fn published_roots_for_sizes_0_to_8() {
        let all = leaves();
        assert_eq!(
            hex::encode(MerkleTree::from_leaves::<Vec<u8>>(&[]).root()),
            EMPTY
        );
        assert_eq!(hex::encode(root_from_leaf_hashes(&[])), EMPTY);
        for n in 1..=8 {
            let tree = MerkleTree::from_leaves(&all[..n]);
            assert_eq!(hex::encode(tree.root()), ROOTS[n - 1], "size {n}");
            let hashes: Vec<Hash> = all[..n].iter().map(|l| leaf_hash(l)).collect();
            assert_eq!(hex::encode(root_from_leaf_hashes(&hashes)), ROOTS[n - 1]);
            let full = MerkleTree::from_leaves(&all);
            assert_eq!(hex::encode(full.root_at(n as u64).unwrap()), ROOTS[n - 1]);
        }
    }

    #[test]
    fn published_inclusion_and_consistency_proofs() {
        // Vectors from transparency-dev/merkle proof/verify_test.go.
        let tree = MerkleTree::from_leaves(&leaves());
        let p = tree.inclusion_proof(0).unwrap();
        let got: Vec<String> = p.iter().map(hex::encode).collect();
        assert_eq!(
            got,
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        let c = tree.consistency_proof(1, 8).unwrap();
        let got: Vec<String> = c.iter().map(hex::encode).collect();
        assert_eq!(
            got,
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        let c = tree.consistency_proof(6, 8).unwrap();
        let got: Vec<String> = c.iter().map(hex::encode).collect();
        assert_eq!(
            got,
            [
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
    }

    #[test]
    fn edge_cases_reject() {
        let tree = MerkleTree::from_leaves(&leaves());
        let root = tree.root();
        let leaf = tree.leaf_hashes()[3];
        let path = tree.inclusion_proof(3).unwrap();
        assert!(verify_inclusion(&leaf, 3, 8, &path, &root));
        assert!(!verify_inclusion(&leaf, 8, 8, &path, &root));
        assert!(!verify_inclusion(&leaf, 3, 0, &path, &root));
        assert!(tree.inclusion_proof(8).is_none());
        assert!(verify_consistency(0, 8, &empty_root(), &root, &[]));
        assert!(verify_consistency(8, 8, &root, &root, &[]));
        assert!(!verify_consistency(8, 8, &root, &empty_root(), &[]));
        assert!(!verify_consistency(9, 8, &root, &root, &[]));
        assert!(!verify_consistency(
            3,
            8,
            &tree.root_at(3).unwrap(),
            &root,
            &[]
        ));
    }

    fn tree_of(n: usize, salt: u8) -> MerkleTree {
        MerkleTree::from_leaves(
            &(0..n)
                .map(|i| [salt, (i % 251) as u8, (i / 251) as u8])
                .collect::<Vec<_>>(),
        )
    }

    proptest! {
        #[test]
        fn every_inclusion_proof_verifies_and_tweaks_fail(n in 1usize..300, pick in any::<prop::sample::Index>(),
                                                        flip in any::<prop::sample::Index>(), bit in 0u8..8) {
            let tree = tree_of(n, 7);
            let root = tree.root();
            prop_assert_eq!(root, root_from_leaf_hashes(tree.leaf_hashes()));
            let i = pick.index(n) as u64;
            let leaf = tree.leaf_hashes()[i as usize];
            let path = tree.inclusion_proof(i).unwrap();
            prop_assert!(verify_inclusion(&leaf, i, n as u64, &path, &root));
            // A different leaf, index, size or path must fail.
            let mut other = leaf;
            other[0] ^= 1 << bit;
            prop_assert!(!verify_inclusion(&other, i, n as u64, &path, &root));
            if !path.is_empty() {
                let mut bad = path.clone();
                let j = flip.index(bad.len());
                bad[j][(bit as usize) % 32] ^= 1 << bit;
                prop_assert!(!verify_inclusion(&leaf, i, n as u64, &bad, &root));
                prop_assert!(!verify_inclusion(&leaf, i, n as u64, &path[..path.len() - 1], &root));
            }
            if n > 1 {
                let j = (i + 1) % n as u64;
                prop_assert!(!verify_inclusion(&leaf, j, n as u64, &path, &root));
            }
        }

        #[test]
        fn every_consistency_proof_verifies_and_tweaks_fail(n in 1usize..300, a in any::<prop::sample::Index>(),
                                                          b in any::<prop::sample::Index>(), bit in 0u8..8) {
            let tree = tree_of(n, 3);
            let (mut m, mut k) = (a.index(n + 1) as u64, b.index(n + 1) as u64);
            if m > k { std::mem::swap(&mut m, &mut k); }
            let (old, new) = (tree.root_at(m).unwrap(), tree.root_at(k).unwrap());
            let proof = tree.consistency_proof(m, k).unwrap();
            prop_assert!(verify_consistency(m, k, &old, &new, &proof));
            let mut bad_old = old;
            bad_old[(bit as usize) % 32] ^= 1 << bit;
            if m > 0 {
                prop_assert!(!verify_consistency(m, k, &bad_old, &new, &proof));
            }
            if !proof.is_empty() {
                let mut bad = proof.clone();
                bad[0][3] ^= 1 << bit;
                prop_assert!(!verify_consistency(m, k, &old, &new, &bad));
            }
            // A rewritten history (different leaves) is not consistent with the old root.
            if m > 0 && m < k {
                let other = tree_of(n, 4);
                let other_new = other.root_at(k).unwrap();
                let other_proof = other.consistency_proof(m, k).unwrap();
                prop_assert!(!verify_consistency(m, k, &old, &other_new, &other_proof));
            }
        }

        #[test]
        fn frontier_matches_tree(n in 0usize..200) {
            let tree = tree_of(n, 9);
            let mut f = Frontier::default();
            for (i, l) in tree.leaf_hashes().iter().enumerate() {
                f.push(*l);
                prop_assert_eq!(f.root(), tree.root_at(i as u64 + 1).unwrap());
            }
            let back = Frontier::from_parts(f.size(), f.nodes().to_vec()).unwrap();
            prop_assert_eq!(back.root(), tree.root());
        }
    }
}
