// Float32 values read and written through their bits, so that CuPy's -ftz=true (under which an f32 instruction,
// cvt.ftz.f64.f32 included, reads a subnormal float32 as 0 and writes 0 for a subnormal result) flushes nothing.
// Doubles are never flushed.  minibng.gpu.kernels puts this file before each kernel file that includes it.
#pragma once
#define THREADS 256

__device__ double exact_double(double v) { return v; }

__device__ double exact_double(float v) {   // the float's value as a double, exactly, subnormal numbers included
    const unsigned int bits = __float_as_uint(v), exponent = (bits >> 23) & 0xffu, mantissa = bits & 0x7fffffu;
    const double magnitude = exponent == 0u
        ? (double)mantissa * 1.401298464324817e-45                    // m · 2^-149: a subnormal number, or zero
        : __longlong_as_double((long long)(exponent == 0xffu ? 0x7ffu : exponent + 896u) << 52
                               | (long long)mantissa << 29);          // re-biased exponent, the same 23 bits
    return bits >> 31 ? -magnitude : magnitude;
}

__device__ void store(double* out, double v) { *out = v; }

__device__ void store(float* out, double v) {   // v rounded to float, ties to even, subnormal results kept
    if (!(fabs(v) < 1.1754943508222875e-38)) { *out = (float)v; return; }   // normal, too large, ∞, NaN: as is
    const unsigned int units = (unsigned int)rint(fabs(v) * 7.1362384635297994e+44);   // in units of 2^-149
    *out = __uint_as_float((signbit(v) ? 0x80000000u : 0u) | units);
}
