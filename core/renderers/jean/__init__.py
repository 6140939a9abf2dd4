"""JEAN (Chatziagapi et al.): a dynamic NeRF conditioned on a contrastively learned audio embedding and on
expression features disentangled from speech by a transformer (``--renderer jean``)."""
