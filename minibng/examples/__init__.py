"""The paper's experiments, each runnable as ``python -m minibng.examples.<name> --help``.

| file            | what it holds                                                                               |
|-----------------|---------------------------------------------------------------------------------------------|
| mnist_mlp.py    | Figure 1: deep sigmoid MLPs on MNIST                                                        |
| cifar_resnet.py | Tables 1–2, Figure 2: ResNets on CIFAR                                                      |
| ptb_lstm.py     | Figure 3: an LSTM language model on Penn Treebank                                           |
| rt_cnn.py       | Table 4: Kim's sentence CNN on Rotten Tomatoes                                              |
| script.py       | what a script is to the layer that runs it: flags, defaults, data sizes, one function a phase |
| flags.py        | the command line: the shared flags and each script's, parsed without side effects          |
| settings.py     | the flags judged into one Settings value, before any data is read or folder made            |
| out_folder.py   | the output folder: every rule for starting or resuming one, and the experiment's record     |
| session.py      | one run of a script, from its command line to its table; library errors turned into advice  |
| experiment.py   | the runs of one experiment: training each, its epoch lines, its histories, its figures      |
| report.py       | what is printed: an epoch's line, the summary table                                         |
"""
