// constraints.h: keras' weight constraints (keras/src/constraints/constraints.py), applied to a layer's
// kernel or bias after each optimizer update, and the activity penalty (keras/src/layers/layer.py).
//
//   n = sqrt(sum(w^2 over the norm's axis))          float32, summed in index order
//   max_norm:      w * (clip(n, 0, max) / (eps + n))
//   unit_norm:     w / (eps + n)
//   min_max_norm:  w * ((rate * clip(n, min, max) + (1 - rate) * n) / (eps + n))
//   non_neg:       max(w, 0)
//   clip(x, lo, hi) = max(min(x, hi), lo); eps = float(1e-7)
//
// a kernel (IN, OUT) is stored in column panels (dense.h). a per-column norm (keras' axis=0, the
// default) or non_neg touches only one column's weights: the thread that owns the column applies it.
// a per-row or whole-tensor norm, and any norm of a bias, spans threads: one thread applies it.
#pragma once

#include <cstddef>

#include "common.h"

namespace pyreg {

enum class ConstraintKind : int { none = 0, max_norm = 1, unit_norm = 2, non_neg = 3, min_max_norm = 4 };
// the norm's extent in keras' (IN, OUT) layout: per column (axis=0), per row (axis=1) or the whole weight.
// a bias (OUT) takes `all`.
enum class NormAxis : int { columns = 0, rows = 1, all = 2 };

struct ConstraintSpec {
    ConstraintKind kind = ConstraintKind::none;
    NormAxis axis = NormAxis::columns;
    float min_value = 0.0f, max_value = 0.0f, rate = 1.0f, one_minus_rate = 0.0f;  // float32 as keras casts them
    bool active() const { return kind != ConstraintKind::none; }
    // true when each column's result depends on that column alone (its owner can apply it)
    bool per_column() const { return kind == ConstraintKind::non_neg || axis == NormAxis::columns; }
};

// the constraint on columns [c.begin, c.end) of a panel-stored kernel (IN, OUT); spec.per_column() only.
void constrain_kernel_cols(const ConstraintSpec& spec, float* kernel, size_t IN, size_t OUT, Range c);
// the constraint on a whole panel-stored kernel (any axis).
void constrain_kernel(const ConstraintSpec& spec, float* kernel, size_t IN, size_t OUT);
// the constraint on a vector (a bias): its norm is over all n values.
void constrain_vector(const ConstraintSpec& spec, float* w, size_t n);

// the activity penalty of one output row y (n): l1 * sum|y| + l2 * sum(y^2), in double.
double activity_row_penalty(const float* y, size_t n, float l1, float l2);
// adds the activity penalty's gradient, divided by the batch size, to the gradient dz (rows, OUT) of a
// layer's pre-activation, for columns c of every row:  dz += act'(y) * (c2 * (2 * y) + c1 * sign(y)),
// c2 = (1/B) * l2 and c1 = (1/B) * l1 in float32, y the layer's output after its activation and
// before dropout. a linear layer's act' is 1, relu's is y > 0.
void add_activity_grad(float* dz, const float* y, size_t rows, size_t OUT, Range c, Act act, float l1, float l2,
                       size_t B);

}  // namespace pyreg
