// Uniform [0, 1) numbers from Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as
// 1, 2, 3", SC 2011): a counter-based generator, so block k of the stream under key (k0, k1) is a pure function of
// k and the key.  No state lives on the device: a stream is its key, and thread k makes block k.
__device__ void philox4x32_10(unsigned int c[4], unsigned int k0, unsigned int k1) {
    for (int round = 0; round < 10; ++round) {
        if (round > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }      // the key schedule: Weyl sequences
        const unsigned int hi0 = __umulhi(0xD2511F53u, c[0]), lo0 = 0xD2511F53u * c[0];
        const unsigned int hi1 = __umulhi(0xCD9E8D57u, c[2]), lo1 = 0xCD9E8D57u * c[2];
        const unsigned int c1 = c[1], c3 = c[3];
        c[0] = hi1 ^ c1 ^ k0; c[1] = lo1; c[2] = hi0 ^ c3 ^ k1; c[3] = lo0;
    }
}

__device__ void block_of_stream(long long k, unsigned int k0, unsigned int k1, unsigned int c[4]) {
    c[0] = (unsigned int)k; c[1] = (unsigned int)(k >> 32); c[2] = 0u; c[3] = 0u;
    philox4x32_10(c, k0, k1);
}

// float32: entries 4k … 4k + 3 take the top 24 bits of each word, times 2^-24 (every result exact, 0 or normal).
extern "C" __global__ void uniform_float(float* out, const long long size, const unsigned int k0,
                                         const unsigned int k1) {
    const long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (4 * k >= size) return;
    unsigned int c[4];
    block_of_stream(k, k0, k1, c);
    for (int j = 0; j < 4 && 4 * k + j < size; ++j) out[4 * k + j] = (float)(c[j] >> 8) * 5.9604644775390625e-08f;
}

// float64: entries 2k and 2k + 1 take 27 + 26 bits of two words, (a · 2^26 + b) · 2^-53, as NumPy's random() does.
extern "C" __global__ void uniform_double(double* out, const long long size, const unsigned int k0,
                                          const unsigned int k1) {
    const long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (2 * k >= size) return;
    unsigned int c[4];
    block_of_stream(k, k0, k1, c);
    for (int j = 0; j < 2 && 2 * k + j < size; ++j)
        out[2 * k + j] = ((double)(c[2 * j] >> 5) * 67108864.0 + (double)(c[2 * j + 1] >> 6)) * 1.1102230246251565e-16;
}
