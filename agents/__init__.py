"""ShiftRL agents: each paper's method with the baselines it compares against.

Agents receive spaces and batches (numpy arrays or torch tensors), never env internals or
Ray; trainers/ wires them to envs and workers.
"""
