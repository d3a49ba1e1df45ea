"""Figures computed from arrays of images, features and class probabilities: what every evaluation shares.

    classifier_score        exp E_x KL(p(y|x) || p(y)), the Inception score with the zoo's MNIST classifier
    frechet_distance        between Gaussians fitted to two feature sets
    nearest_distances       from each image to its nearest reference image, in pixel space
    binary_cross_entropy    of reconstructions, per image
    random_masks, inpainting_scores
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

FRACTIONS = (0.2, 0.5, 0.8)  # of the pixels missing in the inpainting figures



def classifier_score(probabilities):
    """exp(E_x KL(p(y|x) || p(y))): 10 for confident, evenly spread classes; 1 for uninformative images."""
    p = np.clip(probabilities.astype(np.float64), 1e-12, 1.0)
    marginal = p.mean(axis=0)
    return float(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), axis=1))))


def _sqrtm_psd(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(features_a, features_b):
    """||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)) between Gaussians fitted to two feature sets.

    Tr((C_a C_b)^(1/2)) = Tr((S C_b S)^(1/2)) with S = C_a^(1/2), a symmetric form that eigh computes stably.
    """
    a, b = features_a.astype(np.float64), features_b.astype(np.float64)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = _sqrtm_psd(cov_a)
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root @ cov_b @ root), 0, None)))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def nearest_distances(queries, references, batch_size=500):
    """Euclidean distance from each query image to its nearest reference image (pixels in [0, 1]). The nearest is
    found by the fast expansion of distance_blocks, whose float32 rounding is about sqrt(eps) |x| (up to 0.01 for
    MNIST images, so an image's own copy could read 0.008 away); the distance to it is then computed directly."""
    queries, references = (np.asarray(images, np.float32).reshape(len(images), -1) for images in (queries, references))
    nearest = np.concatenate([block.argmin(axis=1) for block in distance_blocks(queries, references, batch_size)])
    return np.linalg.norm(queries - references[nearest], axis=1)


def binary_cross_entropy(targets, predictions):
    """Per image, summed over pixels, in nats: -sum x log p + (1 - x) log(1 - p), p clipped to [1e-7, 1 - 1e-7]."""
    p = np.clip(predictions.astype(np.float64), 1e-7, 1 - 1e-7)
    x = targets.astype(np.float64)
    return -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))


def random_masks(shape, fraction, seed):
    """Masks (1 = observed) with exactly round(fraction * 784) missing pixels per image, uniformly at random."""
    rng = np.random.default_rng(seed)
    n, pixels = shape[0], int(np.prod(shape[1:]))
    missing = int(round(fraction * pixels))
    order = np.argsort(rng.random((n, pixels)), axis=1)
    masks = np.ones((n, pixels), np.float32)
    np.put_along_axis(masks, order[:, :missing], 0.0, axis=1)
    return masks.reshape(shape)


def inpainting_scores(completions, originals, masks, labels, judge):
    """Squared error on the missing pixels (mean per missing pixel) and classifier accuracy on the completions."""
    missing = masks < 0.5
    return {"mse": float(np.mean(np.square(completions - originals)[missing])),
            "accuracy": judge.accuracy(completions, labels)}


def kernel_distance(features_a, features_b, subsets=100, subset_size=1000, seed=0):
    """KID (Bińkowski et al. 2018): the unbiased estimate of MMD^2 between two feature sets under the cubic
    polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets of each set.

        MMD^2 = sum_{i != j} k(a_i, a_j) / (m (m - 1)) + sum_{i != j} k(b_i, b_j) / (m (m - 1))
                - 2 sum_{i, j} k(a_i, b_j) / m^2

    Unbiased, so it is near 0 for two samples of one distribution (and can dip below 0), and unlike the Fréchet
    distance it does not depend on the number of samples. Subsets hold at most half of either set, so that they
    differ and their spread measures the estimate's noise. Returns {"kid", "standard_error" (over subsets), "std",
    "subset_size"}.
    """
    a, b = features_a.astype(np.float64), features_b.astype(np.float64)
    m = min(subset_size, len(a) // 2, len(b) // 2)
    rng = np.random.default_rng(seed)
    dimension = a.shape[1]
    estimates = []
    for _ in range(subsets):
        x, y = a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]
        k_xx, k_yy, k_xy = ((p @ q.T / dimension + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        estimates.append(within - 2 * k_xy.mean())
    estimates = np.array(estimates)
    return {"kid": float(estimates.mean()), "standard_error": float(estimates.std(ddof=1) / np.sqrt(subsets)),
            "std": float(estimates.std(ddof=1)), "subset_size": m}


def distance_blocks(queries, references, batch_size=1000):
    """Euclidean distances between rows, [len(queries), len(references)], in blocks of batch_size query rows."""
    refs = tf.constant(references, tf.float32)
    ref_norms = tf.reduce_sum(tf.square(refs), axis=1)
    for start in range(0, len(queries), batch_size):
        q = tf.constant(queries[start:start + batch_size], tf.float32)
        squared = tf.reduce_sum(tf.square(q), axis=1, keepdims=True) + ref_norms - 2.0 * tf.matmul(q, refs,
                                                                                                   transpose_b=True)
        yield tf.sqrt(tf.maximum(squared, 0.0)).numpy()


def pairwise_distances(queries, references):
    return np.concatenate(list(distance_blocks(queries, references)))


def precision_recall(real_features, generated_features, k=3):
    """Improved precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of balls around
    its points reaching their k-th nearest neighbour in the same set.

        precision  the fraction of generated points inside the real manifold (are the samples realistic?)
        recall     the fraction of real points inside the generated manifold (is all of the data covered?)

    Read the two together: a real outlier's large ball can hold a whole collapsed set, so precision alone can be
    high for garbage (uniform noise images scored 0.9997 here, with recall 0.0).
    """
    real_radii = np.partition(pairwise_distances(real_features, real_features), k, axis=1)[:, k]  # [:, 0] is self
    generated_radii = np.partition(pairwise_distances(generated_features, generated_features), k, axis=1)[:, k]
    cross = pairwise_distances(generated_features, real_features)  # [generated, real]
    return {"precision": float(np.mean(np.any(cross <= real_radii[None, :], axis=1))),
            "recall": float(np.mean(np.any(cross <= generated_radii[:, None], axis=0)))}
