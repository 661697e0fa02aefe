// Block arithmetic of minibng.optim.Partition on the GPU: sums, sums of squares and largest magnitudes over the
// segments of a flat vector, and the per-block scale v^i · r_i.
//
// Float32 values are decoded from their bits into doubles and results encoded back (exact.cuh): no f32 instruction
// touches a value, so CuPy's -ftz=true flushes no subnormal number.  Sums and products use __dadd_rn, __dmul_rn and
// __ddiv_rn, which the compiler never fuses into an FMA, so the host twin of these kernels (tests/gpu_twins.py)
// reproduces every result bit for bit.
#include "exact.cuh"

enum { SUM, SUM_OF_SQUARES, MAX_ABS };

template <int OP, typename T> __device__ double load(T v, double scale) {
    const double x = exact_double(v);
    if (OP == SUM) return x;
    if (OP == MAX_ABS) return fabs(x);
    const double scaled = __dmul_rn(x, scale);
    return __dmul_rn(scaled, scaled);
}

template <int OP> __device__ double combine(double a, double b) {
    if (OP == MAX_ABS) return a > b || a != a ? a : b;   // NaN wins
    return __dadd_rn(a, b);
}

// Range r of the launch (one thread block) folds values[begin[r] : end[r]]: thread t folds entries t, t + THREADS, …
// in order, then a fixed tree folds the threads.  Squares are of the value times scales[segment_of[r]].
template <int OP, typename T>
__device__ void reduce_ranges(const T* values, const long long* begin, const long long* end,
                              const long long* segment_of, const double* scales, double* out) {
    __shared__ double partial[THREADS];
    const long long range = blockIdx.x;
    const double scale = OP == SUM_OF_SQUARES ? scales[segment_of[range]] : 1.0;
    double acc = 0.0;
    for (long long i = begin[range] + threadIdx.x; i < end[range]; i += THREADS)
        acc = combine<OP>(acc, load<OP, T>(values[i], scale));
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int half = THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) partial[threadIdx.x] = combine<OP>(partial[threadIdx.x], partial[threadIdx.x + half]);
        __syncthreads();
    }
    if (threadIdx.x == 0) out[range] = partial[0];
}

#define REDUCTION(name, OP, T)                                                                                   \
    extern "C" __global__ void name(const T* values, const long long* begin, const long long* end,             \
                                    const long long* segment_of, const double* scales, double* out) {           \
        reduce_ranges<OP, T>(values, begin, end, segment_of, scales, out);                                     \
    }
REDUCTION(sum_float, SUM, float)
REDUCTION(sum_double, SUM, double)
REDUCTION(sum_of_squares_float, SUM_OF_SQUARES, float)
REDUCTION(sum_of_squares_double, SUM_OF_SQUARES, double)
REDUCTION(max_abs_float, MAX_ABS, float)
REDUCTION(max_abs_double, MAX_ABS, double)

// out_j = (v_j / divisor_b) · multiplier_b for the block b holding coordinate j, formed in double.
template <typename T>
__device__ void scale_blocks(const T* v, const long long* block_of, const double* divisor, const double* multiplier,
                             const long long size, T* out) {
    const long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (j < size) {
        const long long b = block_of[j];
        store(out + j, __dmul_rn(__ddiv_rn(exact_double(v[j]), divisor[b]), multiplier[b]));
    }
}

#define SCALE(name, T)                                                                                           \
    extern "C" __global__ void name(const T* v, const long long* block_of, const double* divisor,              \
                                    const double* multiplier, const long long size, T* out) {                   \
        scale_blocks<T>(v, block_of, divisor, multiplier, size, out);                                           \
    }
SCALE(scale_float, float)
SCALE(scale_double, double)
