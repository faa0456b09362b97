"""Graph operators as plain NumPy functions, shared by the graph runners of the port readers: the
ONNX runner (lstmctl/layers/onnx.py maps a node's attributes onto these keyword parameters) and the
TFLite reader.

The contract:
- Each op is a function of arrays and explicit keyword parameters (axis, perm, keepdims, …); no
  file format's attribute names or dicts. Callers convert their format's fields first.
- Each op takes `where` (the node, for messages: "model.onnx: node 'Expand_3' (Expand)") and
  `tally` (a lstmctl.budget.Tally the whole run shares, or None). Before allocating its result an
  op checks that result's shape with `budget.check_shape(shape, where, "op_elements")` and adds the
  elements it computes to the tally's "graph_elements" (a MatMul counts its multiply-adds), so
  neither one op after an Expand nor a long chain of them can take minutes or gigabytes.
- Inputs that do not fit the op (shapes that do not broadcast, an axis out of range, an index
  past the end) raise LstmctlError naming `where`, never a NumPy exception.
- Semantics are ONNX's where it and NumPy differ (Slice clamps its bounds, Gather takes negative
  indices, Reshape's 0 copies a dimension, integer Div truncates toward zero).

Modules by family: elementwise (arithmetic, comparisons, activations, Cast, Where),
shape (Reshape, Transpose, Concat, Split, Slice, Gather, Squeeze, Unsqueeze, Expand, Tile, …),
linalg (MatMul, Gemm), reduce (reductions, Softmax, ArgMax); sizes holds the budget check.
"""
