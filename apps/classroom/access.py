"""Who sees what across a class: a member watches the runs shared with the class (a presentation
shares its run); nothing of another class."""

from django.db.models import Q


def shared_with(user):
    """The runs shared with any class the user belongs to (as a student or an instructor)."""
    return Q(shares__classroom__memberships__user=user) | Q(shares__classroom__instructors=user)
