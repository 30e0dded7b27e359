"""AWS pieces the amazon provider lacks: thin AwsBaseHook subclasses and IAM policy assembly."""
