"""Stage 1: videos -> faces. Decoding, MTCNN detection, face tracking, the train and test flows, perturbations."""
