"""A small QA set over the SQuAD 2.0 retrieval corpus (ids as in its corpus.jsonl).

The questions are SQuAD's own (queries.jsonl); the shared copy ships without answers, so the
reference answers were written for this project from each gold passage (every one is a span of
it: tests check that). Used by `ragline models bench` to score generators, and by
`ragline eval-answers` when no QA file is given.
"""

from __future__ import annotations

from ragline.evaluation.metrics import QAItem

# (gold passage id, question, reference answers)
_ITEMS = [
    ("Prime_number#0", "What is the only divisor besides 1 that a prime number can have?", ["itself"]),
    (
        "Prime_number#0",
        "What are numbers greater than 1 that can be divided by 3 or more numbers called?",
        ["composite number"],
    ),
    (
        "Prime_number#0",
        "What theorem defines the main role of primes in number theory?",
        ["fundamental theorem of arithmetic"],
    ),
    (
        "Prime_number#13",
        "What organization offers monetary awards for identifying primes with at least 100 million digits?",
        ["Electronic Frontier Foundation"],
    ),
    ("Ctenophora#10", "What are the eight comb rows on the outer surface called?", ["swimming-plates"]),
    ("University_of_Chicago#24", "Roughly how much is the Student Government's budget?", ["$2 million", "2 million"]),
    ("University_of_Chicago#24", "How many vice presidents are on the Student Board?", ["two"]),
    ("Oxygen#2", "Who proved that air is necessary for combustion?", ["Robert Boyle"]),
    ("Oxygen#2", "What did John Mayow  name the part of air that caused combustion?", ["nitroaereus"]),
    (
        "Economic_inequality#6",
        "What type of entrepreneurship leads to advancements in technology?",
        ["opportunity-based"],
    ),
    ("Economic_inequality#28", "Who matters the most for economic growth?", ["The poor and the middle class"]),
    ("Rhine#35", "The Rhine first formed a boundary between Gaul and what else?", ["Germania"]),
    ("Geology#22", "Who is viewed as the first modern geologist?", ["James Hutton"]),
    (
        "Geology#22",
        "In 1785 James Hutton presented what paper to the Royal Society of Edinburgh?",
        ["Theory of the Earth"],
    ),
    ("Geology#22", "James Hutton published a 2 volume version of his theories in what year?", ["1795"]),
    ("Fresno,_California#2", "In 1940, what percentage of the population in Fresno was Asian?", ["2.7%", "2.7"]),
    ("Fresno,_California#2", "What was the Fresno Fairgrounds used as?", ["assembly center"]),
    (
        "Amazon_rainforest#20",
        "How many areas were impacted by the the death of vegetation in the 2010 drought?",
        ["three"],
    ),
    ("Amazon_rainforest#20", "How many tons of carbon are absorbed the Amazon in a typical year?", ["1.5 gigatons"]),
    ("Miscellaneous#6", "What is a system of ritual norms and propriety?", ["Lǐ"]),
]

SQUAD_QA_SAMPLE = [QAItem(question, answers, [gold]) for gold, question, answers in _ITEMS]
