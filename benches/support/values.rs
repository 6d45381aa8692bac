//! Shared by the benches: the values they write.

/// Distinct values each data set cycles through.
pub const POOL: usize = 4096;

/// `POOL` distinct values of `size` bytes, back to back: JSON-like events whose `payload` is
/// pseudo-random hex filling the rest.
pub fn value_pool(size: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut out = Vec::with_capacity(POOL * size);
    for i in 0..POOL {
        let mut v = format!(
            "{{\"seq\":{i:08},\"type\":\"order.created\",\"customer\":\"c-{:04}\",\"payload\":\"",
            next() % 10_000
        )
        .into_bytes();
        while v.len() + 2 < size {
            v.push(b"0123456789abcdef"[(next() % 16) as usize]);
        }
        v.extend_from_slice(b"\"}");
        v.resize(size, b' ');
        out.extend_from_slice(&v);
    }
    out
}
