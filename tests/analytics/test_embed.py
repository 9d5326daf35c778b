"""MiniLM topic clusters (analytics.embed): real embeddings, so marked slow."""

import numpy as np
import pytest

from distillguard.analytics.embed import MiniLM, TopicConfig, assign_topics, kmeans


def test_kmeans_separates_clear_clusters(rng):
    centers = np.eye(8)[:3]
    x = np.concatenate([c + 0.05 * rng.standard_normal((50, 8)) for c in centers])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cent = kmeans(x, 3, np.random.default_rng(0))
    lab = np.argmax(x @ cent.T, axis=1)
    assert len({tuple(lab[i * 50 : (i + 1) * 50]) for i in range(3)}) == 3
    assert all(len(set(lab[i * 50 : (i + 1) * 50])) == 1 for i in range(3))


@pytest.mark.slow
def test_minilm_topics_group_paraphrases_not_subjects():
    pytest.importorskip("transformers")
    subjects = {
        "cooking": ["How long should I boil pasta?", "What's the best way to cook spaghetti al dente?",
                    "Tips for making fresh pasta dough at home", "Why does my pasta stick together?"],
        "astronomy": ["How do black holes form?", "What happens at a black hole's event horizon?",
                      "Explain how stars collapse into black holes", "Can light escape a black hole?"],
        "tax": ["How do I file my income tax return?", "What deductions can I claim on my taxes?",
                "When is the deadline for filing income taxes?", "How are capital gains taxed?"],
    }
    prompts = [p for ps in subjects.values() for p in ps]
    enc = MiniLM()
    emb = enc.encode(prompts)
    assert emb.shape == (12, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    lab = assign_topics(prompts, enc, TopicConfig(k=3, seed=0))
    groups = [set(lab[i * 4 : (i + 1) * 4].tolist()) for i in range(3)]
    assert all(len(g) == 1 for g in groups) and len(set.union(*groups)) == 3
