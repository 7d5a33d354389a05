"""The model: the Llama-style causal LM (jest.model.llama), its FLOPs (jest.model.flops), the
hardware's peak (jest.model.hardware), and the CPU fast path (fastpath, fastforward, cpu_matmul)."""
