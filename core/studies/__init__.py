"""Studies: a grid of augmented experiments (which labels, how much, which synthetic pool) against one
shared baseline. `plan` expands the planner's form into cells and says what each needs, `queue` starts
them all, `outcome` summarises the finished grid (matrix, cost per F1 point, operating points) and
`sensitivity` swaps facet words in the test texts to see whether predictions flip.
"""
