// Tree kernels as XLA FFI custom calls for the CPU, built at first use by brainfuse_kernels._native.
// bf_hines_*: the Hines tree solve, NEURON's own two loops (Hines 1984): elimination from the leaves
// to the root and substitution back, for a matrix with diagonal d, a[i] = M[i, parent[i]] and
// b[i] = M[parent[i], i] (parent[i] < i, roots -1).
// bf_laplacian_*: the axial current L v of a tree with conductance g[i] between node i and its
// parent: out[i] = sum over i's edges of g (v_i - v_other).
// Leading batch dimensions are handled one system after another.
#include <cstdint>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

template <typename T>
static void solve_one(const int64_t* parent, int64_t n, const T* d, const T* a, const T* b, const T* r, T* x,
                      T* dd) {
  for (int64_t i = 0; i < n; ++i) {
    dd[i] = d[i];
    x[i] = r[i];
  }
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t p = parent[i];
    if (p >= 0) {
      const T f = b[i] / dd[i];
      dd[p] -= f * a[i];
      x[p] -= f * x[i];
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = parent[i];
    x[i] = (p >= 0 ? x[i] - a[i] * x[p] : x[i]) / dd[i];
  }
}

template <ffi::DataType DT>
static ffi::Error Hines(ffi::Span<const int64_t> parent, ffi::Buffer<DT> d, ffi::Buffer<DT> a, ffi::Buffer<DT> b,
                        ffi::Buffer<DT> r, ffi::ResultBuffer<DT> x) {
  using T = ffi::NativeType<DT>;
  const int64_t n = static_cast<int64_t>(parent.size());
  const int64_t total = static_cast<int64_t>(d.element_count());
  if (n == 0 || total % n != 0 || a.element_count() != d.element_count() ||
      b.element_count() != d.element_count() || r.element_count() != d.element_count()) {
    return ffi::Error::InvalidArgument("bf_hines: d, a, b and rhs must have the same shape (..., N)");
  }
  thread_local std::vector<T> dd;
  dd.resize(n);
  for (int64_t off = 0; off < total; off += n) {
    solve_one<T>(parent.begin(), n, d.typed_data() + off, a.typed_data() + off, b.typed_data() + off,
                 r.typed_data() + off, x->typed_data() + off, dd.data());
  }
  return ffi::Error::Success();
}

template <typename T>
static void laplacian_one(const int64_t* parent, int64_t n, const T* g, const T* v, T* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = T(0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = parent[i];
    if (p >= 0) {
      const T f = g[i] * (v[i] - v[p]);
      out[i] += f;
      out[p] -= f;
    }
  }
}

template <ffi::DataType DT>
static ffi::Error Laplacian(ffi::Span<const int64_t> parent, ffi::Buffer<DT> g, ffi::Buffer<DT> v,
                            ffi::ResultBuffer<DT> out) {
  using T = ffi::NativeType<DT>;
  const int64_t n = static_cast<int64_t>(parent.size());
  const int64_t total = static_cast<int64_t>(v.element_count());
  if (n == 0 || total % n != 0 || g.element_count() != v.element_count()) {
    return ffi::Error::InvalidArgument("bf_laplacian: g and v must have the same shape (..., N)");
  }
  for (int64_t off = 0; off < total; off += n) {
    laplacian_one<T>(parent.begin(), n, g.typed_data() + off, v.typed_data() + off, out->typed_data() + off);
  }
  return ffi::Error::Success();
}

#define BF_LAPLACIAN_BINDING(DT)                                                                      \
  ffi::Ffi::Bind()                                                                                    \
      .Attr<ffi::Span<const int64_t>>("parent")                                                       \
      .Arg<ffi::Buffer<DT>>()                                                                         \
      .Arg<ffi::Buffer<DT>>()                                                                         \
      .Ret<ffi::Buffer<DT>>()

XLA_FFI_DEFINE_HANDLER_SYMBOL(bf_laplacian_f32, Laplacian<ffi::F32>, BF_LAPLACIAN_BINDING(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(bf_laplacian_f64, Laplacian<ffi::F64>, BF_LAPLACIAN_BINDING(ffi::F64));

#define BF_HINES_BINDING(DT)                                                                          \
  ffi::Ffi::Bind()                                                                                    \
      .Attr<ffi::Span<const int64_t>>("parent")                                                       \
      .Arg<ffi::Buffer<DT>>()                                                                         \
      .Arg<ffi::Buffer<DT>>()                                                                         \
      .Arg<ffi::Buffer<DT>>()                                                                         \
      .Arg<ffi::Buffer<DT>>()                                                                         \
      .Ret<ffi::Buffer<DT>>()

XLA_FFI_DEFINE_HANDLER_SYMBOL(bf_hines_f32, Hines<ffi::F32>, BF_HINES_BINDING(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(bf_hines_f64, Hines<ffi::F64>, BF_HINES_BINDING(ffi::F64));
