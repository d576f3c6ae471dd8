//! The update kernels of PyTorch's single-tensor optimisers, on one run of
//! parameters (a group's, or all of them) and the same run of each state
//! buffer; see the module documentation of [`super`] for the arithmetic.
//! A buffer the setting does not keep is passed empty.

use super::{OptimizerKind, OptimizerSettings};

/// `torch.optim.SGD`'s single-tensor update; `first_step` when the
/// momentum buffer was just created (the first step clones the gradient).
#[inline(always)]
pub(super) fn sgd(s: &OptimizerSettings, params: &mut [f32], grads: &[f32], bufs: &mut [f32], first_step: bool) {
    let (wd, momentum, minus_lr) = (s.weight_decay as f32, s.momentum as f32, (-s.lr) as f32);
    let one_minus_dampening = (1.0 - s.dampening) as f32;
    let decay = |p: f32, g: f32| if wd != 0.0 { p.mul_add(wd, g) } else { g }; // grad.add(param, alpha=wd)
    if s.momentum == 0.0 {
        for (p, &g) in params.iter_mut().zip(grads) {
            *p = decay(*p, g).mul_add(minus_lr, *p); // param.add_(grad, alpha=-lr)
        }
        return;
    }
    for ((p, &g), buf) in params.iter_mut().zip(grads).zip(bufs.iter_mut()) {
        let d = decay(*p, g);
        // The first step clones the gradient; then
        // buf.mul_(momentum).add_(grad, alpha=1 - dampening).
        *buf = if first_step { d } else { d.mul_add(one_minus_dampening, *buf * momentum) };
        // Nesterov: grad.add(buf, alpha=momentum).
        let d = if s.nesterov { buf.mul_add(momentum, d) } else { *buf };
        *p = d.mul_add(minus_lr, *p);
    }
}

/// `torch.optim.Adam`'s and `AdamW`'s single-tensor update at step `t`.
#[inline(always)]
pub(super) fn adam(s: &OptimizerSettings, t: u64, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
    let wd = s.weight_decay as f32;
    let decoupled = s.kind == OptimizerKind::Adamw;
    // torch.optim.Adam's scalars, in Python floats.
    let t = t as f64;
    let step_size = s.lr / (1.0 - s.betas[0].powf(t));
    let correction2_sqrt = (1.0 - s.betas[1].powf(t)).powf(0.5) as f32;
    let (b2, one_minus_b1, one_minus_b2) = (s.betas[1] as f32, (1.0 - s.betas[0]) as f32, (1.0 - s.betas[1]) as f32);
    let (eps, minus_step_size) = (s.eps as f32, (-step_size) as f32);
    let shrink = (1.0 - s.lr * s.weight_decay) as f32;
    for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if decoupled {
            if wd != 0.0 {
                *p *= shrink; // param.mul_(1 - lr * weight_decay)
            }
            g
        } else if wd != 0.0 {
            p.mul_add(wd, g) // grad.add(param, alpha=weight_decay)
        } else {
            g
        };
        *m = lerp(*m, g, one_minus_b1); // exp_avg.lerp_(grad, 1 - beta1)
        *v = (one_minus_b2 * g).mul_add(g, *v * b2); // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        let denom = v.sqrt() / correction2_sqrt + eps; // (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        *p += minus_step_size * *m / denom; // param.addcdiv_(exp_avg, denom, value=-step_size)
    }
}

/// `torch.optim.Adagrad`'s single-tensor update at step `t`:
/// `sum.addcmul_(g, g)`, `std = sum.sqrt().add_(eps)`,
/// `param.addcdiv_(g, std, value=-clr)` with `clr = lr / (1 + (t - 1)
/// lr_decay)` in Python floats.
#[inline(always)]
pub(super) fn adagrad(s: &OptimizerSettings, t: u64, params: &mut [f32], grads: &[f32], sums: &mut [f32]) {
    let clr = s.lr / (1.0 + (t as f64 - 1.0) * s.lr_decay);
    let (wd, eps, minus_clr) = (s.weight_decay as f32, s.eps as f32, (-clr) as f32);
    for ((p, &g), sum) in params.iter_mut().zip(grads).zip(sums.iter_mut()) {
        let g = if wd != 0.0 { p.mul_add(wd, g) } else { g }; // grad.add(param, alpha=wd)
        *sum = g.mul_add(g, *sum); // addcmul_(grad, grad, value=1)
        let std = sum.sqrt() + eps;
        *p += minus_clr * g / std;
    }
}

/// `torch.optim.RMSprop`'s single-tensor update:
/// `square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)`; centred,
/// `grad_avg.lerp_(g, 1 - alpha)` and `avg = square_avg.addcmul(
/// grad_avg, grad_avg, value=-1).sqrt_()`, else `avg = square_avg.sqrt()`;
/// `avg.add_(eps)`; with momentum `buf.mul_(momentum).addcdiv_(g, avg)`
/// and `param.add_(buf, alpha=-lr)`, else `param.addcdiv_(g, avg, value=-lr)`.
#[inline(always)]
pub(super) fn rmsprop(
    s: &OptimizerSettings,
    params: &mut [f32],
    grads: &[f32],
    square_avg: &mut [f32],
    bufs: &mut [f32],
    grad_avg: &mut [f32],
) {
    let (wd, eps, minus_lr) = (s.weight_decay as f32, s.eps as f32, (-s.lr) as f32);
    let (alpha, one_minus_alpha, momentum) = (s.alpha as f32, (1.0 - s.alpha) as f32, s.momentum as f32);
    for i in 0..params.len() {
        let p = params[i];
        let g = if wd != 0.0 { p.mul_add(wd, grads[i]) } else { grads[i] };
        let sq = &mut square_avg[i];
        *sq = (one_minus_alpha * g).mul_add(g, *sq * alpha);
        let avg = if s.centered {
            let mean = &mut grad_avg[i];
            *mean = lerp(*mean, g, one_minus_alpha);
            (-*mean).mul_add(*mean, *sq).sqrt() + eps
        } else {
            sq.sqrt() + eps
        };
        params[i] = if s.momentum > 0.0 {
            let buf = &mut bufs[i];
            *buf = *buf * momentum + g / avg; // addcdiv_(grad, avg, value=1)
            buf.mul_add(minus_lr, p)
        } else {
            p + minus_lr * g / avg
        };
    }
}

/// `torch.lerp(start, end, weight)` on the CPU: `start + weight * (end -
/// start)` for |weight| < 0.5, else `end - (end - start) * (1 - weight)`,
/// each one fused multiply-add as in its vectorised kernel.
#[inline(always)]
pub(super) fn lerp(start: f32, end: f32, weight: f32) -> f32 {
    if weight.abs() < 0.5 {
        weight.mul_add(end - start, start)
    } else {
        (weight - 1.0).mul_add(end - start, end)
    }
}
