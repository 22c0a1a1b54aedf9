// sweep_kernels.cpp: a microbenchmark of the first layer's sweep kernels (cpp/sweep.h) on one thread's
// share of the study's model with two threads: one 784 x 64 kernel panel, a batch of 32 MNIST-like
// rows (19% non-zero, centre-heavy), Adam with L2. It answers "where does the sweep's time per batch
// go" kernel by kernel, which the end-to-end benchmarks (bench/test_fit_bench.py) cannot.
//
// build (off by default; the executable lands in the build directory):
//   pip install --no-build-isolation -e . -Cbuild-dir=build/micro -Ccmake.define.PYREG_MICROBENCH=ON
//   build/micro/sweep_kernels [avx512|avx2|generic]
// prints the minimum and median of 3000 calls of each kernel, in microseconds.
#include <xmmintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "common.h"
#include "dense.h"
#include "optim.h"
#include "simd.h"

using namespace pyreg;

namespace {

constexpr size_t kIn = 784, kRows = 32, kWidth = kColBlock, kLdz = 128;  // dz rows span both panels

// mnist-like input: pixel (i, j) of a 28 x 28 image is non-zero with a probability falling off from
// the centre, 19% overall, values in (0, 1).
std::vector<float> mnist_like_rows(std::mt19937& rng) {
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> x(kRows * kIn, 0.0f);
    for (size_t r = 0; r < kRows; ++r)
        for (size_t p = 0; p < kIn; ++p) {
            const float di = (float)(p / 28) - 13.5f, dj = (float)(p % 28) - 13.5f;
            const float d = (di * di + dj * dj) / 100.0f;
            if (u(rng) < 0.55f * std::exp(-d * d)) x[r * kIn + p] = u(rng);
        }
    return x;
}

aligned_vector<float> filled(size_t n, std::mt19937& rng, float scale) {
    std::uniform_real_distribution<float> u(-scale, scale);
    aligned_vector<float> a(n);
    for (float& v : a) v = u(rng);
    return a;
}

template <class Fn>
void bench(const char* name, Fn fn) {
    std::vector<double> t;
    for (int rep = 0; rep < 3000; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    std::printf("%-46s min %7.2f us   median %7.2f us\n", name, t[0], t[t.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1) select_kernels(argv[1]);
    _mm_setcsr(_mm_getcsr() | 0x8040);  // flush denormals, as the trainer's threads do (fpenv.h)
    const KernelTable& K = kernels();
    std::mt19937 rng(1);
    const std::vector<float> x = mnist_like_rows(rng), x_next = mnist_like_rows(rng);
    size_t nonzero = 0;
    for (float v : x) nonzero += v != 0.0f;
    std::printf("kernels %s, panel %zu x %zu, batch %zu, %.1f%% of inputs non-zero\n", K.name, kIn, kWidth, kRows,
                100.0 * (double)nonzero / (double)x.size());
    std::vector<const float*> rows(kRows), rows_next(kRows);
    for (size_t r = 0; r < kRows; ++r) rows[r] = x.data() + r * kIn, rows_next[r] = x_next.data() + r * kIn;

    // bitmaps as the trainer builds them: per row (scan), then per feature (column_bits)
    const size_t words = bit_words(kIn), bw = bit_words(kRows);
    std::vector<uint64_t> row_bits(kRows * words), row_bits_next(kRows * words), cols(kIn * bw);
    for (size_t r = 0; r < kRows; ++r) {
        K.nonzero_bits(rows[r], kIn, row_bits.data() + r * words);
        K.nonzero_bits(rows_next[r], kIn, row_bits_next.data() + r * words);
    }
    K.column_bits(row_bits.data(), kRows, words, 0, words, kIn, cols.data());

    const size_t n = kIn * kWidth;
    // two panels (a thread owning both, as one thread does on the study's 128 units), the second right
    // after the first; the one-panel kernels use the first
    aligned_vector<float> w = filled(2 * n, rng, 0.08f), m = filled(2 * n, rng, 1e-3f), v = filled(2 * n, rng, 1e-4f);
    for (float& e : v) e = std::fabs(e);
    aligned_vector<float> g(n), dz = filled(kRows * kLdz, rng, 1e-2f), bias = filled(kWidth, rng, 0.1f);
    aligned_vector<float> y(kRows * kWidth);
    OptCoef c{};
    c.alpha = 1e-3f, c.one_minus_beta_1 = 0.1f, c.one_minus_beta_2 = 1e-3f, c.epsilon = 1e-7f, c.l2 = 1e-3f;
    double sq[2] = {0.0, 0.0}, ab[2] = {0.0, 0.0};
    constexpr size_t kForwardRows = 3 * kOptRows;  // as sweep.cpp

    bench("row scans (nonzero_bits, 32 rows, from L1/L2)", [&] {
        for (size_t r = 0; r < kRows; ++r) K.nonzero_bits(rows_next[r], kIn, row_bits_next.data() + r * words);
    });
    bench("column bitmaps (column_bits)", [&] { K.column_bits(row_bits.data(), kRows, words, 0, words, kIn, cols.data()); });
    bench("weight gradient (sparse_weight_grad)", [&] {
        K.sparse_weight_grad(0, kIn, kWidth, cols.data(), bw, rows.data(), dz.data(), kLdz, g.data(), kWidth);
    });
    bench("adam + l2 from a stored gradient (adam)", [&] {
        for (size_t r0 = 0; r0 < kIn; r0 += kOptRows) {
            const size_t o = r0 * kWidth, nr = std::min(kOptRows, kIn - r0);
            K.adam(nr, kWidth, kWidth, w.data() + o, g.data() + o, m.data() + o, v.data() + o, nullptr, c, sq, ab);
        }
    });
    bench("gradient + adam fused (sparse_grad_adam)", [&] {
        for (size_t r0 = 0; r0 < kIn; r0 += kOptRows) {
            const size_t o = r0 * kWidth;
            K.sparse_grad_adam(r0, std::min(kIn, r0 + kOptRows), cols.data(), bw, rows.data(), dz.data(), kLdz,
                               w.data() + o, m.data() + o, v.data() + o, nullptr, 0, c, sq, ab);
        }
    });
    bench("... on two panels, one after the other", [&] {
        for (size_t panel = 0; panel < 2; ++panel)
            for (size_t r0 = 0; r0 < kIn; r0 += kOptRows) {
                const size_t o = panel * n + r0 * kWidth;
                K.sparse_grad_adam(r0, std::min(kIn, r0 + kOptRows), cols.data(), bw, rows.data(),
                                   dz.data() + panel * kWidth, kLdz, w.data() + o, m.data() + o, v.data() + o, nullptr,
                                   0, c, sq + panel, ab + panel);
            }
    });
    bench("... on two panels at once", [&] {
        for (size_t r0 = 0; r0 < kIn; r0 += kOptRows) {
            const size_t o = r0 * kWidth;
            K.sparse_grad_adam(r0, std::min(kIn, r0 + kOptRows), cols.data(), bw, rows.data(), dz.data(), kLdz,
                               w.data() + o, m.data() + o, v.data() + o, nullptr, n, c, sq, ab);
        }
    });
    bench("next batch's output (sparse_forward_chunk)", [&] {
        for (size_t f0 = 0; f0 < kIn; f0 += kForwardRows) {
            const size_t f1 = std::min(kIn, f0 + kForwardRows);
            K.sparse_forward_chunk(kRows, kWidth, f0, f1, row_bits_next.data(), words, rows_next.data(), w.data(),
                                   kWidth, bias.data(), Act::relu, f0 == 0, f1 == kIn, y.data(), kWidth);
        }
    });
    std::printf("(checksum %g)\n", sq[0] + sq[1] + (double)y[0]);
    return 0;
}
