"""Training: fine-tuning a multi-label classifier on real data with and without synthetic data.
`config` holds the typed settings stored with every run, `dataset` builds baseline and augmented
training sets, `job` runs one seed in the worker and `finetune` is the Trainer code itself
(`base_model`, `encoding` and `evaluation` are its parts); `view` is what the Train page reads.
"""
