"""Schoenholz et al. 2017, "Deep Information Propagation": the order-to-chaos phase diagram.

Two inputs of correlation 0.5 are propagated through random tanh MLPs on a grid of
(sigma_w2, sigma_b2). Left of the critical line chi1 = 1 their pre-activations become identical
(c -> 1, ordered); right of it they decorrelate to c* < 1 (chaotic); near the line the
correlation converges slowly (the depth scale xi_c diverges), which is what lets information and
gradients travel through very deep networks (Sec. 3, Figs. 1-2; Poole et al. 2016, Fig. 2). The
measured correlations, extrapolated to infinite width from two widths, are held against the
mean-field c-map layer by layer.

Run: jwinit run --config=schoenholz2017        (or schoenholz2017:smoke)
"""

from jwinit.experiments import config


def get_config(arg=None):
    return config("phase_diagram", arg, smoke=dict(
        sigma_w2=(0.5, 1.0, 1.5, 2.5, 4.0), sigma_b2=(0.0, 0.1), depth=20, widths=(64, 128),
        seeds=4))
