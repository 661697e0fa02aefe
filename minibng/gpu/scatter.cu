// target[ids] += values with repeated ids summed in a fixed order, without atomics: the rows are sorted by id
// (stably, on the host side of the launch), and the thread of (row r, column c) that starts a run of equal ids sums
// the run's rows in order, in double, and adds the sum to its target entry once.  The same result on every run.
// Values are decoded from their bits and the result encoded back (exact.cuh): -ftz=true flushes nothing.
#include "exact.cuh"

template <typename T>
__device__ void add_sorted_runs(const long long* sorted_ids, const long long* order, const T* values,
                                const long long rows, const long long columns, T* target) {
    const long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (k >= rows * columns) return;
    const long long r = k / columns, c = k % columns, id = sorted_ids[r];
    if (r > 0 && sorted_ids[r - 1] == id) return;                       // not the first row of its run
    double sum = exact_double(values[order[r] * columns + c]);
    for (long long s = r + 1; s < rows && sorted_ids[s] == id; ++s)
        sum = __dadd_rn(sum, exact_double(values[order[s] * columns + c]));
    store(target + id * columns + c, __dadd_rn(exact_double(target[id * columns + c]), sum));
}

extern "C" __global__ void add_sorted_runs_float(const long long* sorted_ids, const long long* order,
                                                 const float* values, const long long rows, const long long columns,
                                                 float* target) {
    add_sorted_runs<float>(sorted_ids, order, values, rows, columns, target);
}

extern "C" __global__ void add_sorted_runs_double(const long long* sorted_ids, const long long* order,
                                                  const double* values, const long long rows,
                                                  const long long columns, double* target) {
    add_sorted_runs<double>(sorted_ids, order, values, rows, columns, target);
}
