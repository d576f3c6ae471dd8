//! The Mersenne Twister MT19937 (Matsumoto & Nishimura 1998, "Mersenne
//! Twister: a 623-dimensionally equidistributed uniform pseudo-random number
//! generator", ACM TOMACS 8(1)), seeded by `init_genrand` of the authors'
//! 2002 reference code: the engine behind PyTorch's CPU generator
//! (`aten/src/ATen/core/MT19937RNGEngine.h`), NumPy's legacy `RandomState`
//! and C++'s `std::mt19937`.

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// One MT19937 state: 624 words and the position of the next one to temper.
#[derive(Clone, Debug)]
pub struct Mt19937 {
    state: [u32; N],
    next: usize,
}

impl Mt19937 {
    /// The state `init_genrand(seed)` makes; like PyTorch, only the low 32
    /// bits of the seed count.
    pub fn new(seed: u64) -> Self {
        let mut state = [0u32; N];
        state[0] = seed as u32;
        for j in 1..N {
            let prev = state[j - 1];
            state[j] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(j as u32);
        }
        Mt19937 { state, next: N }
    }

    /// Regenerates all 624 words (the "twist").
    fn twist(&mut self) {
        let mix = |upper: u32, lower: u32, far: u32| {
            let y = (upper & UPPER_MASK) | (lower & LOWER_MASK);
            far ^ (y >> 1) ^ if y & 1 == 1 { MATRIX_A } else { 0 }
        };
        for i in 0..N {
            let far = self.state[(i + M) % N];
            self.state[i] = mix(self.state[i], self.state[(i + 1) % N], far);
        }
        self.next = 0;
    }

    /// The next 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.next >= N {
            self.twist();
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousandth_output_of_the_default_seed_is_the_standards() {
        // C++ [rand.predef]: the 10000th consecutive invocation of a
        // default-constructed std::mt19937 (seed 5489) produces 4123659995.
        let mut mt = Mt19937::new(5489);
        let last = (0..10_000).map(|_| mt.next_u32()).last();
        assert_eq!(last, Some(4_123_659_995));
    }

    #[test]
    fn first_outputs_of_the_reference_code() {
        // mt19937ar.c's init_genrand(5489): the first outputs the authors'
        // test file mt19937ar.out would give for that seed.
        let mut mt = Mt19937::new(5489);
        let first: Vec<u32> = (0..3).map(|_| mt.next_u32()).collect();
        assert_eq!(first, vec![3_499_211_612, 581_869_302, 3_890_346_734]);
    }
}
