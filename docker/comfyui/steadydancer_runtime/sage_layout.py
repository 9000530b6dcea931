"""SageAttention fed heads-first (STEADYDANCER_SAGE_LAYOUT=hnd; default nhd, the wrapper's own call).

The wrapper calls SageAttention with its tensors as [batch, tokens, heads, dim] ("NHD"). SageAttention 2's
Hopper kernel takes either layout; this hands it [batch, heads, tokens, dim] copies ("HND") and turns the
output back, for the benchmark to compare the kernel's speed in both layouts (bench/gpu/sage_layout.py
checks that both give the same bits).
"""

import sys


def _attention_module():
    for name, module in list(sys.modules.items()):
        if name.endswith("wanvideo.modules.attention") and hasattr(module, "sageattn_func"):
            return module
    raise RuntimeError("the wrapper's wanvideo.modules.attention is not loaded")


def install():
    module = _attention_module()
    original = module.sageattn_func

    def sageattn_heads_first(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, tensor_layout="HND"):
        if tensor_layout != "NHD":
            return original(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, tensor_layout=tensor_layout)
        out = original(
            q.transpose(1, 2).contiguous(),
            k.transpose(1, 2).contiguous(),
            v.transpose(1, 2).contiguous(),
            attn_mask=attn_mask,
            dropout_p=dropout_p,
            is_causal=is_causal,
            tensor_layout="HND",
        )
        return out.transpose(1, 2)

    module.sageattn_func = sageattn_heads_first
