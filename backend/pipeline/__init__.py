"""The segmentation pipeline, one module per stage in data-flow order:

detect     detections aligned to the part names by name, whole-object boxes dropped, the box rule
sample     points sampled on the mesh surface
visibility which points each view sees, and at which pixel
lift       detections -> knowledge units over the points (and painted faces -> fixed units)
shape      a shape made ready for the student (normalised points, kNN graph, units)
distill    forward and backward distillation of the units into the student
label      the student's per-point prediction -> per-face -> per-polygon labels
vote       the multi-view voting baseline (no student)
"""
