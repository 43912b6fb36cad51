"""The tutorials' training code as printed, each in a `main(seed, epochs, root, train_limit, eval_limit)`
that returns (figures, net): what the code prints, by epoch, and the trained network.

Every line that is not the tutorial's is marked `# added:` (or `# changed:`, with what was printed).
The additions only seed the run where the harness seeds it (right before the network is built),
point the code at local data, shorten it (a first-N-samples subset, fewer epochs), set one thread and
hand the printed figures to the caller.
"""
